#!/usr/bin/env bash
# Installs what the project needs on a fresh machine, and does nothing that is
# already done: Debian packages (redis-server, shellcheck, jq, prometheus), a
# virtualenv in .venv with the package and its local and test extras (one venv
# serves both README commands), the control-plane binaries and KEDA (built once
# per version into ~/.cache/usersession-operator), and the Prometheus Operator's
# CRDs (Go's module cache). Safe to run repeatedly.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
extras=local,test
log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v jq >/dev/null || missing+=(jq)  # the README's walkthrough reads JSON with it
# promtool checks the chart's alert rules; the monitoring tests run prometheus as a child process.
command -v promtool >/dev/null || missing+=(prometheus)
# dot draws docs/architecture.svg (hack/gen-diagram.sh); tests/unit/test_docs.py redraws it to compare.
command -v dot >/dev/null || missing+=(graphviz)
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Only the binaries are wanted: where systemd runs, the package also starts a
  # Prometheus service listening on every interface.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && systemctl is-active --quiet prometheus 2>/dev/null; then
    log "stopping and disabling the prometheus service the package started"
    as_root systemctl disable --now prometheus
  fi
fi

if ! command -v go >/dev/null && [[ -z "${KUBEBUILDER_ASSETS:-}" ]]; then
  log "Go (1.26 or newer) is needed to build the control-plane binaries, or set KUBEBUILDER_ASSETS"
  exit 1
fi

venv="$root/.venv"
# Pinned to what the suite last passed with (hack/constraints.txt): a release
# published since cannot break a run (it has: a stricter type stub, say).
constraints="$root/hack/constraints.txt"
stamp="$venv/.installed-$(cat "$root/pyproject.toml" "$constraints" | sha256sum | cut -c1-16)-${extras//,/_}"
if [[ ! -f "$stamp" ]]; then
  log "creating $venv with .[${extras}]"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q -c "$constraints" -e "${root}[${extras}]"
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi

# Each prints a path on stdout; keep our own stdout clean for callers. The two
# long Go builds run side by side: on a cold machine their downloads overlap.
"$root/hack/build-control-plane.sh" >/dev/null &
control_plane=$!
"$root/hack/build-keda.sh" >/dev/null &
keda=$!
wait "$control_plane"
wait "$keda"
"$root/hack/build-helm.sh" >/dev/null
"$root/hack/build-actionlint.sh" >/dev/null
"$root/hack/build-crane.sh" >/dev/null
"$root/hack/prometheus-operator-crds.sh" >/dev/null
