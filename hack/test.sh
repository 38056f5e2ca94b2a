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
if [[ $# -eq 0 ]]; then
  # Three runs beside the rest of the suite, one after the other, each on a local
  # stack of its own and mostly waiting on it; their output follows the suite's.
  # The chaos run's and the capacity benchmark's short forms take minutes each.
  # Then the operator tests again, this time with the Helm chart's ServiceAccount
  # token and RBAC instead of cluster-admin: proof that the chart's
  # least-privilege permissions are enough, for the examples too.
  heavy=(tests/chaos tests/benchmarks/test_capacity_small.py)
  beside() {
    local rc=0
    echo "== pytest: the chaos run and the capacity benchmark (short forms, run alongside)"
    run_pytest -p no:cacheprovider "${heavy[@]}" || rc=1
    echo "== pytest: operator as the Helm chart's ServiceAccount (run alongside)"
    USERSESSION_TEST_OPERATOR_IDENTITY=chart run_pytest -p no:cacheprovider \
      tests/integration/test_handlers.py tests/integration/test_redis_tls.py \
      -k "test_handlers or example" || rc=1
    return "$rc"
  }
  beside_log=$(mktemp)
  trap 'rm -f "$beside_log"' EXIT
  beside >"$beside_log" 2>&1 &
  beside_pid=$!
  rc=0
  run_pytest --durations=12 "${heavy[@]/#/--ignore=}" || rc=$?
  beside_rc=0
  wait "$beside_pid" || beside_rc=$?
  cat "$beside_log"
  if ((rc || beside_rc)); then exit 1; fi
else
  run_pytest "$@"
fi
