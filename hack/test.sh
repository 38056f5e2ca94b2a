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
echo "== import layers"; .venv/bin/lint-imports --no-cache
run_pytest() {
  local rc=0
  "$py" -m pytest "$@" || rc=$?
  if [[ $rc -eq 5 ]]; then
    echo "pytest collected no tests: treating that as a failure" >&2
    return 1
  fi
  return $rc
}

echo "== pytest"
run_pytest "$@"
if [[ $# -eq 0 ]]; then
  # The operator tests again, this time with the Helm chart's ServiceAccount
  # token and RBAC instead of cluster-admin: proof that the chart's
  # least-privilege permissions are enough.
  echo "== pytest: operator as the Helm chart's ServiceAccount"
  USERSESSION_TEST_OPERATOR_IDENTITY=chart run_pytest tests/integration/test_handlers.py
fi
