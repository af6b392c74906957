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
# libFuzzer stops at this resident size of the whole process (MB); the DICOM
# hour grew past 4 GB over ~180k inputs, so a run watching that growth can
# raise it (FUZZ_RSS_MB=8192).
rss_mb=${FUZZ_RSS_MB:-4096}
# One allocation larger than this is a finding whatever the RSS limit (by
# default libFuzzer ties it to the RSS limit, so raising that hid 2.5–3.7 GB
# allocations from 7 KB files: fuzz/regressions/dicom/oom-inside-undefined-length-un-*). 2 GiB is the most
# decoded pixel data the app accepts (imaging::MAX_PIXEL_BYTES).
malloc_mb=${FUZZ_MALLOC_MB:-2048}
echo "==> Fuzzing $target for ${seconds} s (max input ${max_len} bytes), log in target/fuzz/$target.log" >&2
# FUZZ_PREBUILT=1 runs the target as last built (`cargo fuzz build --release`)
# without building it again: an hour's run can go on while the app's sources
# change beside it. (cargo fuzz has no such switch; the binary is where it puts it.)
bin=target/x86_64-unknown-linux-gnu/release/$target
flags=(-max_total_time="$seconds" -max_len="$max_len" -timeout="$timeout" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$malloc_mb" -print_final_stats=1)
# More libFuzzer flags, e.g. FUZZ_EXTRA=-detect_leaks=0 (see docs/reliability.md:
# jpeg-decoder's worker threads race LeakSanitizer's check after an input).
read -r -a extra <<< "${FUZZ_EXTRA:-}"
flags+=("${extra[@]}")
if [ "${FUZZ_PREBUILT:-0}" = 1 ]; then
  [ -x "$bin" ] || { echo "==> no $bin: run cargo +nightly fuzz build --release first" >&2; exit 2; }
  mkdir -p "artifacts/$target"
  "$bin" "${flags[@]}" -artifact_prefix="artifacts/$target/" "corpus/$target" "seeds/$target" > "$log" 2>&1
else
  cargo +nightly fuzz run --release "$target" "corpus/$target" "seeds/$target" -- "${flags[@]}" > "$log" 2>&1
fi
status=$?
grep -E '^#[0-9]+ +DONE|^stat::|SUMMARY|panicked|ERROR' "$log" | tail -n 12 >&2
if [ $status -ne 0 ]; then
  echo "==> $target stopped with status $status: see $log and fuzz/artifacts/$target/" >&2
  exit $status
fi
echo "==> Minimising the $target corpus (cargo fuzz cmin, in place)" >&2
if [ "${FUZZ_PREBUILT:-0}" = 1 ]; then
  # What cargo fuzz cmin does: merge into a fresh folder, then swap it in.
  fresh=$(mktemp -d "corpus/.$target.cmin.XXXXXX")
  if "$bin" -merge=1 -max_len="$max_len" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$malloc_mb" -artifact_prefix="artifacts/$target/" "$fresh" "corpus/$target" >> "$log" 2>&1 && [ -n "$(ls "$fresh")" ]; then
    rm -rf "corpus/$target" && mv "$fresh" "corpus/$target"
  else
    rm -rf "$fresh"
  fi
else
  cargo +nightly fuzz cmin --release "$target" "corpus/$target" -- -max_len="$max_len" >> "$log" 2>&1 || true
fi
echo "==> $target corpus: $(ls "corpus/$target" | wc -l) inputs, $(du -sh "corpus/$target" | cut -f1)" >&2
