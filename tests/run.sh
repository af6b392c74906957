#!/usr/bin/env bash
# Runs every test suite of MedGemma Desk in order, says what each step does,
# keeps going after a failure, and ends with one line: "N passed, N failed".
# Called by `make test` once the prerequisites are installed.
set -uo pipefail
cd "$(dirname "$0")/.."

LOGS=target/test-logs
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log
passed=0 failed=0 broken_steps=()

# Adds up cargo's "test result: ok. 5 passed; 0 failed; ..." lines and
# Vitest's "Tests  1 failed | 5 passed (6)" line.
count() {
  local pf
  pf=$(sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^test result:|^\s+Tests\s' | awk '
    { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    END { print p + 0, f + 0 }')
  passed=$(( passed + ${pf% *} ))
  failed=$(( failed + ${pf#* } ))
}

step() {
  local name=$1; shift
  local log="$LOGS/${name// /-}.log"
  echo
  echo "==> $name"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  count "$log"
  if [ "$rc" -ne 0 ]; then
    broken_steps+=("$name")
    # A step that failed without any failed test (a build error) still fails.
    grep -qE '(^test result:.* [1-9][0-9]* failed|[1-9][0-9]* failed)' "$log" || failed=$(( failed + 1 ))
  fi
}

step "Rust tests (unit, CLI, store, runtime)" cargo test --release --workspace
# The offline-only build (--features lockdown): built, kept aside, and its
# network trace run on it (asked to download, it must not even open an IPv4 or
# IPv6 socket). The cargo test here rebuilds the default binary after it.
step "Lockdown build: no network socket even when asked (strace)" bash -c '
  cargo build --release -p medgemma-desk --features lockdown --quiet &&
  mkdir -p target/lockdown && cp target/release/medgemma-desk target/lockdown/ &&
  MEDGEMMA_LOCKDOWN_BIN="$PWD/target/lockdown/medgemma-desk" \
    cargo test --release -p medgemma-desk --test cli lockdown -- --ignored'
# The store's key in a real Secret Service (gnome-keyring in its own D-Bus
# session): made on first run, found again, its loss refused without change.
step "Store key in the system keyring (gnome-keyring, Secret Service)" \
  dbus-run-session -- tests/keyring.sh \
  cargo test --release -p medgemma-desk --lib store_key:: -- --ignored
# The GPU path compiles, so a change that breaks it fails here: the runtime
# with candle's CUDA kernels, built by nvcc 13.0 (no GPU needed to compile).
step "CUDA build of the runtime compiles (nvcc 13.0, sm_${CUDA_COMPUTE_CAP:-90})" \
  models/cuda/toolkit.sh compile cargo build --release -p medgemma-models --features cuda --lib --quiet
step "UI type check (svelte-check)" npm --prefix ui run --silent check
step "UI unit tests (Vitest)" npm --prefix ui test --silent
# The prepared GPU check (tests/gpu/run.sh), its CPU half: the binaries it
# carries to a GPU machine, built here without CUDA, run on the CPU.
step "GPU check script, CPU half (tests/gpu/run.sh)" \
  bash -c 'tests/gpu/build.sh --cpu && tests/gpu/run.sh target/gpu-check'
# The real window: WebKitGTK under Xvfb, driven through tauri-driver, with a
# D-Bus session bus and a Secret Service (gnome-keyring) as a desktop has:
# single instance uses the bus, and every window test's store is encrypted
# with its key in that keyring. Bounded by
# `timeout` so a stuck WebKitWebDriver can never hang CI; each test runs in its
# own process under its own limit (tests/e2e/run.sh), so one that hangs is
# named and the rest still run.
step "Window tests (WebDriver, Xvfb)" timeout --signal=TERM --kill-after=30 1500 \
  dbus-run-session -- tests/keyring.sh xvfb-run -a -s "-screen 0 1600x1000x24" \
  tests/e2e/run.sh installed::
# The .deb: built for the x86-64-v3 baseline, installed with dpkg, launched on
# a DICOM file, removed.
step "Package (.deb: build, install, launch, remove)" tests/bundle/check.sh

echo
# The failing tests by name, last, where a CI log's tail shows them.
sed 's/\x1b\[[0-9;]*m//g' "$LOGS"/*.log | grep -E '^test .* (FAILED|TIMED OUT)|^\s+(FAIL|×) ' | sort -u | sed 's/^/Failed: /'
if [ ${#broken_steps[@]} -gt 0 ]; then
  echo "Failed steps: ${broken_steps[*]} (logs in $LOGS/)"
fi
echo "Total: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#broken_steps[@]} -eq 0 ]
