#!/usr/bin/env bash
# Fuzzes one target for a given time (libFuzzer through cargo fuzz, nightly),
# from the committed corpus plus the seeds (fuzz/seeds.sh), then minimises the
# corpus back into fuzz/corpus/<target>. The final statistics (executions,
# coverage, corpus) go to target/fuzz/<target>.log; a crash stops the run and
# leaves its input in fuzz/artifacts/<target>/ (make it a regression: copy it
# to fuzz/regressions/<target>/, which `make test` replays).
#   fuzz/run.sh TARGET SECONDS
set -uo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET SECONDS} seconds=${2:-60}
# A small DICOM file may legitimately hold a large image (RLE, deflate): 1.5 KB
# decoding to 120 × 49498 RGB renders in 0.3 s in a release build but takes
# over 10 s under AddressSanitizer, so DICOM gets a longer limit per input.
timeout=10
case $target in
  dicom) max_len=65536 timeout=60 ;;
  bundle) max_len=65536 ;;
  gguf | safetensors) max_len=16384 ;;
  *) max_len=8192 ;;
esac
mkdir -p "corpus/$target" "seeds/$target" ../target/fuzz
log=../target/fuzz/$target.log
echo "==> Fuzzing $target for ${seconds} s (max input ${max_len} bytes), log in target/fuzz/$target.log" >&2
cargo +nightly fuzz run --release "$target" "corpus/$target" "seeds/$target" -- \
  -max_total_time="$seconds" -max_len="$max_len" -timeout="$timeout" -rss_limit_mb=4096 -print_final_stats=1 > "$log" 2>&1
status=$?
grep -E '^#[0-9]+ +DONE|^stat::|SUMMARY|panicked|ERROR' "$log" | tail -n 12 >&2
if [ $status -ne 0 ]; then
  echo "==> $target stopped with status $status: see $log and fuzz/artifacts/$target/" >&2
  exit $status
fi
echo "==> Minimising the $target corpus (cargo fuzz cmin, in place)" >&2
cargo +nightly fuzz cmin --release "$target" "corpus/$target" -- -max_len="$max_len" >> "$log" 2>&1 || true
echo "==> $target corpus: $(ls "corpus/$target" | wc -l) inputs, $(du -sh "corpus/$target" | cut -f1)" >&2
