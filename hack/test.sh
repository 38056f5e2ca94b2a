#!/usr/bin/env bash
# The whole test suite: lint, type check, unit and integration tests against a
# real local control plane and redis-server. Extra arguments go to pytest.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
hack/setup.sh
py=.venv/bin/python

echo "== ruff"; "$py" -m ruff check operator tests
"$py" -m ruff format --check operator tests
echo "== mypy"; "$py" -m mypy
echo "== pytest"
set +e
"$py" -m pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "pytest collected no tests: treating that as a failure" >&2
  exit 1
fi
exit $rc
