#!/usr/bin/env bash
# Builds what tests/gpu/run.sh carries to a GPU machine, into tests/gpu/bin/:
# the runtime's parity test and device_bench (the runtime alone: no window
# libraries to install there), with CUDA (models/cuda/toolkit.sh, for
# CUDA_COMPUTE_CAP, default 90) or, with --cpu, without it (the CPU half CI runs).
#   tests/gpu/build.sh [--cpu]
# Then, on the GPU machine, from the repository root: tests/gpu/run.sh OUT
# (the working tree plus tests/gpu/bin must stay under 64 MiB to travel: the
# CUDA binaries go compressed, as .xz).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=tests/gpu/bin
mkdir -p "$bin"
if [ "${1:-}" = --cpu ]; then
  run=() features=() target=target
else
  run=(models/cuda/toolkit.sh link) features=(--features cuda) target=target/cuda
fi
export CARGO_TARGET_DIR=$PWD/$target
echo "==> Building the parity test and device_bench (${features[*]:-CPU only}) into $bin" >&2
exe=$("${run[@]}" cargo test --release -p medgemma-models "${features[@]}" --test parity --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -n "$exe" ] || { echo "the parity test did not build" >&2; exit 1; }
"${run[@]}" cargo build --release -p medgemma-models "${features[@]}" --example device_bench --quiet
rm -f "$bin"/parity* "$bin"/device_bench*
cp "$exe" "$bin/parity"
cp "$target/release/examples/device_bench" "$bin/device_bench"
strip "$bin/parity" "$bin/device_bench"
if [ ${#features[@]} -gt 0 ]; then
  # With CUDA each is ~57 MB (the kernels for the chosen GPU inside): xz
  # makes them ~8 MB, so both travel under the 64 MiB limit; run.sh unpacks.
  echo "==> Compressing them for the trip (xz)" >&2
  xz -T0 -9 "$bin/parity" "$bin/device_bench"
fi
du -h "$bin"/* >&2
