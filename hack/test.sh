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
  # The chaos run's and the capacity benchmark's short forms take minutes each on
  # a local stack of their own, mostly waiting on it: they run beside the rest of
  # the suite (which uses another), and their output follows it.
  heavy=(tests/chaos tests/benchmarks/test_capacity_small.py)
  heavy_log=$(mktemp)
  trap 'rm -f "$heavy_log"' EXIT
  run_pytest -p no:cacheprovider "${heavy[@]}" >"$heavy_log" 2>&1 &
  heavy_pid=$!
  rc=0
  run_pytest "${heavy[@]/#/--ignore=}" || rc=$?
  heavy_rc=0
  wait "$heavy_pid" || heavy_rc=$?
  echo "== pytest: the chaos run and the capacity benchmark (short forms, run alongside)"
  cat "$heavy_log"
  if ((rc || heavy_rc)); then exit 1; fi
else
  run_pytest "$@"
fi
if [[ $# -eq 0 ]]; then
  # The operator tests again, this time with the Helm chart's ServiceAccount
  # token and RBAC instead of cluster-admin: proof that the chart's
  # least-privilege permissions are enough, for the examples too.
  echo "== pytest: operator as the Helm chart's ServiceAccount"
  USERSESSION_TEST_OPERATOR_IDENTITY=chart run_pytest \
    tests/integration/test_handlers.py tests/integration/test_redis_tls.py -k "test_handlers or example"
fi
