# syntax=docker/dockerfile:1
#
# One image for the operator (`usersession-operator`, the default command) and
# the session API (`usersession-api`): the same venv holds both entry points, so
# a Deployment picks one with `command:`.
#
# Build (with a registry):   docker build -t usersession-operator .
# Build (here, no registry): hack/image.sh build   (makes a local Debian base and
#                            passes it as BASE_IMAGE)
# Behind a TLS-intercepting proxy, hand the CA bundle in as a build secret so it
# reaches pip but never a layer:  --secret id=ca,src=/path/to/ca-bundle.crt
#
# At runtime the root filesystem can stay read-only. The one writer known is the
# Kubernetes client, which puts certificates from kubeconfig `*-data` fields
# into temp files, so mount a small writable volume at /tmp (an emptyDir in a
# pod; `podman run --read-only` adds one by itself).

# The default is the official slim image pinned by digest, so a rebuild gets the
# same bytes until someone deliberately bumps it. Refresh with
#   crane digest python:3.11-slim-bookworm   (or docker buildx imagetools inspect)
# Both stages must use the same base: the venv's interpreter symlinks point at
# the base's python3.
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${BASE_IMAGE} AS builder

# The venv lives at the same path in both stages because its scripts' shebangs
# are absolute.
ENV VIRTUAL_ENV=/opt/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv "$VIRTUAL_ENV"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator

# The CA secret is optional: with it (proxied networks) pip trusts that bundle,
# without it pip uses its own. The cache mount lets pip keep its download
# cache across builds without it ever entering a layer. Bytecode is compiled once here with unchecked hashes, so it
# stays valid whatever mtimes the COPY below gives the sources and Python never
# tries to recompile on the read-only root. pip itself is removed from the
# venv: nothing installs packages at runtime. The kubernetes client's asyncio
# twin (kubernetes/aio, ~70 MB, over a third of the image) is never imported:
# the operator and the session API use the synchronous client and kopf its own
# aiohttp one; the import check at the end guards the entry points.
RUN --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && "$VIRTUAL_ENV/bin/pip" install --no-compile . \
    && "$VIRTUAL_ENV/bin/pip" uninstall -y -q pip setuptools wheel \
    && rm -rf "$VIRTUAL_ENV"/lib/python3*/site-packages/kubernetes/aio \
    && "$VIRTUAL_ENV/bin/python" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$VIRTUAL_ENV" \
    && "$VIRTUAL_ENV/bin/python" -c "import kopf, kubernetes.client, kubernetes.config, usersession_operator.handlers" \
    && "$VIRTUAL_ENV/bin/usersession-operator" --help >/dev/null

FROM ${BASE_IMAGE}

ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="usersession-operator" \
      org.opencontainers.image.description="Kubernetes operator for per-user sessions that sleep at zero and wake on a Redis queue (UserSession CRD, KEDA); also serves the session API (usersession-api)." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# Root owns the venv and the user cannot write to it: code is immutable at
# runtime even when the root filesystem is not mounted read-only.
COPY --from=builder /opt/venv /opt/venv

# Bytecode was compiled in the builder; writing more at runtime would fail on a
# read-only root. HOME points at the one writable mount for libraries that
# insist on a home directory (the user has no passwd entry).
# The health and metrics endpoints must be reachable from the kubelet and
# Prometheus, hence all interfaces by default inside a pod.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    USERSESSION_LISTEN_HOST=0.0.0.0

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd;
# 65532 is the distroless "nonroot" convention.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["usersession-operator"]
CMD ["run"]
