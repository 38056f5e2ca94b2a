#!/usr/bin/env bash
# Provides etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl and kwok for the pinned versions in hack/versions.env, built from the
# Go module proxy and cached by version outside the repository.
#
# Prints the assets directory (envtest's KUBEBUILDER_ASSETS layout) on stdout;
# progress goes to stderr. If KUBEBUILDER_ASSETS already holds every binary it
# is used as is and nothing is built.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
source "$here/versions.env"

cache=${USERSESSION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usersession-operator}
assets="$cache/assets/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

log() { printf '[build-control-plane %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

have_all() {
  local dir=$1 b
  for b in "${binaries[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
  [[ -d "$dir/kwok-stages" ]] || [[ "$dir" == "${KUBEBUILDER_ASSETS:-}" ]]
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && have_all "$KUBEBUILDER_ASSETS"; then
  log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi
if have_all "$assets"; then
  echo "$assets"
  exit 0
fi

command -v go >/dev/null || { log "go is required to build the control plane"; exit 1; }
mkdir -p "$cache"
# One builder at a time: a second run waits rather than racing on the same dir.
exec 9>"$cache/.build.lock"
flock 9
if have_all "$assets"; then echo "$assets"; exit 0; fi

staging=$(mktemp -d "$cache/.staging.XXXXXX")
work=$(mktemp -d)
trap 'rm -rf "$work" "$staging"' EXIT
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOTOOLCHAIN=local
start=$SECONDS

# --- Kubernetes: a throwaway wrapper module. `go install k8s.io/kubernetes/...@v`
# fails because kubernetes' go.mod replaces its staging modules with local
# paths; here we pin each of them to the published v0.X.Y instead.
log "kubernetes $K8S_VERSION: resolving modules (first run downloads ~1 GB of sources)"
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
staging_version="v0.${K8S_VERSION#v1.}"
mkdir -p "$work/k8s" && cd "$work/k8s"
go mod init usersession-operator.local/k8s-build >/dev/null 2>&1
go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
while read -r m; do
  go mod edit -replace="$m=$m@$staging_version"
done < <(awk '$2 == "v0.0.0" && $1 ~ /^k8s.io\// {print $1}' "$gomod" | sort -u)
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date -X $pkg.gitCommit=module-proxy"
done
cat > tools.go <<'GO'
//go:build tools

package tools
GO
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  log "kubernetes $K8S_VERSION: building $cmd ($((SECONDS - start))s so far)"
  go build -trimpath -ldflags "$ldflags" -o "$staging/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done

# --- etcd: its root module has the same replace problem; etcdmain is the
# whole server behind a one-line main.
log "etcd $ETCD_VERSION: building ($((SECONDS - start))s so far)"
mkdir -p "$work/etcd" && cd "$work/etcd"
go mod init usersession-operator.local/etcd-build >/dev/null 2>&1
cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
go build -trimpath -ldflags "-s -w" -o "$staging/etcd" .

# --- kwok builds with a plain go install; its stage configs (what makes fake
# nodes Ready and fake pods Running) ship inside the module.
log "kwok $KWOK_VERSION: building ($((SECONDS - start))s so far)"
GOBIN="$staging" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
kwokdir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
mkdir -p "$staging/kwok-stages"
cp -r "$kwokdir/kustomize/stage/." "$staging/kwok-stages/"
chmod -R u+w "$staging/kwok-stages"

"$staging/kube-apiserver" --version >&2
"$staging/etcd" --version | head -1 >&2
"$staging/kwok" --version >&2 || true
chmod 755 "$staging"
mkdir -p "$(dirname "$assets")"
rm -rf "$assets"
mv "$staging" "$assets"
log "done in $((SECONDS - start))s: $assets"
echo "$assets"
