#!/usr/bin/env bash
# Builds a Go command from the module proxy once per version, caches it outside
# the repository, and prints its path.   hack/go-tool.sh NAME PACKAGE VERSION [LDFLAGS]
set -euo pipefail

name=$1 package=$2 version=$3 ldflags=${4:-}
cache=${USERSESSION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usersession-operator}
dest="$cache/$name/$version"
if [[ ! -x "$dest/$name" ]]; then
  printf '[go-tool %(%H:%M:%S)T] building %s %s (first run only)\n' -1 "$name" "$version" >&2
  mkdir -p "$dest"
  GOBIN="$dest" GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOTOOLCHAIN=local \
    go install -trimpath -ldflags "-s -w $ldflags" "$package@$version"
fi
echo "$dest/$name"
