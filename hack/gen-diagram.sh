#!/usr/bin/env bash
# Regenerates docs/architecture.svg from docs/architecture.dot with Graphviz's
# dot (Debian's graphviz package; hack/setup.sh installs it). Run it after
# editing the .dot file: tests/unit/test_docs.py checks the two agree.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v dot >/dev/null; then
  echo "gen-diagram: Graphviz's dot is missing: hack/setup.sh installs it (apt-get install graphviz)" >&2
  exit 1
fi

cd "$root"
dot -Tsvg docs/architecture.dot -o docs/architecture.svg
echo "docs/architecture.svg"
