#!/usr/bin/env bash
# Mutation testing of the code that turns measurements into verdicts (issue 14), with mutmut.
#
#   scripts/mutation.sh PACKAGE [JOBS]
#
# PACKAGE is one of: metrics, gates, engine, session, compare, tune, rollback-gates. Each package is
# mutated alone, against the tests that exercise it (the whole suite would take hours on a
# 2-core machine). The run happens in a scratch copy of the committed tree under
# ${MUTATION_DIR:-/tmp/harborbench-mutation}/PACKAGE, so the worktree is never touched; the
# last lines printed are the mutants not killed and the final counts. Inspect one mutant with
#   cd /tmp/harborbench-mutation/PACKAGE && mutmut show NAME
# Not run in CI: a package takes from minutes to an hour. Results: tests/MUTATION.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pkg="${1:?usage: scripts/mutation.sh metrics|gates|engine|session|compare|tune|rollback-gates [JOBS]}"
jobs="${2:-2}"
mutmut="${MUTMUT:-$root/.venv/bin/mutmut}"

case "$pkg" in
    metrics) mutate='"harborbench/metrics/*"'; tests='"tests/metrics"' ;;
    gates) mutate='"harborbench/gates.py"'; tests='"tests/test_gates.py"' ;;
    # engine: the unit tier only (fake client, virtual time, short trials of
    # tests/engine/test_trial_small.py); the real-server files (the integration tier) and the
    # long virtual scenarios of test_trial_virtual.py cost too much to run once per mutant.
    engine) mutate='"harborbench/engine/*"'
        tests='"tests/engine", "-m", "not slow", "--ignore=tests/engine/test_runner_integration.py", "--ignore=tests/engine/test_runner_failures.py", "--ignore=tests/engine/test_summaries.py", "--ignore=tests/engine/test_response_variants.py", "--ignore=tests/engine/test_workload_run.py", "--ignore=tests/engine/test_trial_virtual.py"' ;;
    # session: the measurement session alone, with its unit tests and its real-mock tier.
    session) mutate='"harborbench/engine/session.py"'
        tests='"tests/engine/test_session.py", "tests/engine/test_session_mock.py"' ;;
    compare) mutate='"harborbench/compare/*"'; tests='"tests/compare"' ;;
    tune) mutate='"harborbench/tune/*"'; tests='"tests/tune", "-m", "not slow"' ;;
    # rollback-gates: the smoke tests start a mock server and never call the gates.
    rollback-gates) mutate='"harborbench/rollback/gates.py"'; tests='"tests/rollback", "-k", "not smoke"' ;;
    *) echo "unknown package: $pkg" >&2; exit 2 ;;
esac

work="${MUTATION_DIR:-/tmp/harborbench-mutation}/$pkg"
rm -rf "$work"
mkdir -p "$work"
# The committed tree plus uncommitted edits of tracked files (what `git stash create` sees).
tree="$(cd "$root" && (git stash create || true))"
# profiles/: the tune tests load the shipped profiles.
(cd "$root" && git archive "${tree:-HEAD}" harborbench tests profiles pyproject.toml) | tar -x -C "$work"
cat >>"$work/pyproject.toml" <<TOML

[tool.mutmut]
source_paths = ["harborbench/"]
only_mutate = [$mutate]
also_copy = ["profiles"]
pytest_add_cli_args_test_selection = [$tests]
pytest_add_cli_args = ["-q", "-p", "no:cacheprovider"]
TOML
# mutmut hands each mutant's tests to pytest as an unordered set and stops at the first failure
# (-x): run them fastest first (durations from mutmut's own stats), so a killed mutant costs its
# cheapest failing test, not whatever test the set put first.
cat >>"$work/tests/conftest.py" <<'PY'


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mutation runs only (appended by scripts/mutation.sh): fastest tests first."""
    import json
    from pathlib import Path

    stats = Path("mutmut-stats.json")
    if not stats.exists():
        return
    durations = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
PY
cd "$work"
# mutmut draws a progress line with carriage returns: keep it in run.log, print its last state.
"$mutmut" run --max-children "$jobs" >run.log 2>&1 || true
"$mutmut" results >results.txt || true
cat results.txt
echo "final counts (done/total, killed, no tests, timeout, suspicious, survived, skipped):"
tr '\r' '\n' <run.log | grep -E '[0-9]+/[0-9]+ ' | tail -1
