#!/usr/bin/env bash
# Runs the window tests one process each, each under its own time limit, so a
# test that hangs (a WebDriver call that never answers, a GTK grab left
# behind) is named and stopped while the others still run. Called by
# tests/run.sh inside a D-Bus session and Xvfb. Arguments: tests to skip
# (name prefixes, e.g. `installed::`).
#
# Prints cargo's own "test result:" line per test, and for a test stopped at
# its limit an equivalent FAILED line, so tests/run.sh counts it.
set -uo pipefail
cd "$(dirname "$0")/../.."

LIMIT=${E2E_TEST_LIMIT_S:-180}
CARGO=(cargo test --release -p medgemma-desk --test e2e)

mapfile -t names < <("${CARGO[@]}" -- --ignored --list 2>/dev/null | sed -n 's/: test$//p')
[ ${#names[@]} -gt 0 ] || { echo "no window tests found (did the e2e target build?)"; exit 1; }

rc=0
for name in "${names[@]}"; do
  for skip in "$@"; do [[ $name == "$skip"* ]] && continue 2; done
  echo "--- $name (limit ${LIMIT} s)"
  started=$SECONDS
  timeout --signal=TERM --kill-after=20 "$LIMIT" "${CARGO[@]}" --quiet -- --ignored --exact "$name" --test-threads=1
  status=$?
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "test $name ... TIMED OUT after ${LIMIT} s"
    echo "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out"
    # Whatever the test left on the display or the bus must not block the next one.
    pkill -TERM -f 'WebKitWebDriver|tauri-driver|drag_source.py' 2>/dev/null
  fi
  echo "--- $name: exit $status after $(( SECONDS - started )) s"
  [ "$status" -eq 0 ] || rc=1
done
exit $rc
