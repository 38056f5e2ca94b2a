#!/usr/bin/env bash
# Provides the real KEDA operator (keda-operator) and all of KEDA's CRDs for the
# pinned KEDA_VERSION in hack/versions.env, built from the Go module proxy and
# cached by version outside the repository.
#
# Prints the directory (keda-operator, crds/*.yaml) on stdout; progress goes to
# stderr. If KEDA_ASSETS already holds both it is used as is and nothing is
# built (the same convention as KUBEBUILDER_ASSETS for the control plane).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
source "$here/versions.env"

cache=${USERSESSION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usersession-operator}
assets="$cache/keda/$KEDA_VERSION"

log() { printf '[build-keda %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
have_all() { [[ -x "$1/keda-operator" ]] && compgen -G "$1/crds/*.yaml" >/dev/null; }

if [[ -n "${KEDA_ASSETS:-}" ]] && have_all "$KEDA_ASSETS"; then
  log "using KEDA_ASSETS=$KEDA_ASSETS"
  echo "$KEDA_ASSETS"
  exit 0
fi
if have_all "$assets"; then
  echo "$assets"
  exit 0
fi

command -v go >/dev/null || { log "go is required to build KEDA, or set KEDA_ASSETS"; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/.build-keda.lock"
flock 9
if have_all "$assets"; then echo "$assets"; exit 0; fi

staging=$(mktemp -d "$cache/.staging-keda.XXXXXX")
work=$(mktemp -d)
trap 'rm -rf "$work" "$staging"' EXIT
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOTOOLCHAIN=local
start=$SECONDS

# `go install github.com/kedacore/keda/v2/cmd/operator@v` refuses a module whose
# go.mod has replace directives, so a throwaway wrapper module requires KEDA and
# repeats its replace and exclude directives (read from KEDA's own go.mod, so a
# version bump carries its own).
log "keda $KEDA_VERSION: resolving modules (first run downloads several hundred MB of sources)"
cd "$work"
go mod init usersession-operator.local/keda-build >/dev/null 2>&1
go mod edit -require="github.com/kedacore/keda/v2@$KEDA_VERSION"
info=$(go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION")
gomod=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' <<<"$info")
moddir=$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$info")
# Single-line directives only: KEDA writes each on its own line.
while read -r old oldv _ new newv; do
  go mod edit -replace="$old@$oldv=$new@$newv"
done < <(awk '$1 == "replace" && $4 == "=>" {print $2, $3, $4, $5, $6}' "$gomod")
while read -r m v; do
  go mod edit -exclude="$m@$v"
done < <(awk '$1 == "exclude" && NF == 3 {print $2, $3}' "$gomod")
cat > tools.go <<'GO'
//go:build tools

package tools
GO

log "keda $KEDA_VERSION: building cmd/operator (about 15 minutes cold on 2 cores)"
ldflags="-s -w -X github.com/kedacore/keda/v2/version.Version=$KEDA_VERSION -X github.com/kedacore/keda/v2/version.GitCommit=module-proxy"
go build -trimpath -ldflags "$ldflags" -o "$staging/keda-operator" github.com/kedacore/keda/v2/cmd/operator

mkdir -p "$staging/crds"
cp "$moddir"/config/crd/bases/*.yaml "$staging/crds/"
chmod -R u+w "$staging"
chmod 755 "$staging"
mkdir -p "$(dirname "$assets")"
rm -rf "$assets"
mv "$staging" "$assets"
log "done in $((SECONDS - start))s: $assets"
echo "$assets"
