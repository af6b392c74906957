#!/usr/bin/env bash
# `make bench` part: the GGUF path against llama.cpp, side by side in one run.
#   models/benches/gguf.sh BIN [THREADS] [REPETITIONS]
# For each model: a 512-token synthetic prompt then 128 generated tokens (as
# llama-bench measures), ours and llama-bench alternating, REPETITIONS runs
# each (median), the same thread count; peak RSS of each whole process from
# GNU time. Models: the real Gemma 3 270M Q4_K_M, and a Gemma-3-4B-shaped
# Q4_K_M with random weights (written once by gguf_4b_shape.py and quantized
# by llama.cpp's llama-quantize; 2.5 GB, cached). Prints a Markdown table.
set -euo pipefail
bin=$1 threads=${2:-2} reps=${3:-5}
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
cache="${MEDGEMMA_CACHE:-$HOME/.cache/medgemma-desk}"
peer=$("$here/llamacpp.sh")
export LD_LIBRARY_PATH="$peer/build/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
real=$("$root/tests/fixtures/gemma3-270m-gguf/fetch.sh" --quiet)
shape="$cache/bench-models/gemma-3-4b-shape-random-Q4_K_M.gguf"
if [ ! -f "$shape" ]; then
  mkdir -p "$(dirname "$shape")"
  echo "==> Writing the 4B-shaped F16 GGUF (random weights, 8.6 GB, once)" >&2
  "$peer/venv/bin/python" "$here/gguf_4b_shape.py" "$peer/src/vendor/llama.cpp/gguf-py" "$real" "$shape.f16" >&2
  echo "==> Quantizing it to Q4_K_M with llama-quantize" >&2
  "$peer/build/bin/llama-quantize" "$shape.f16" "$shape.tmp" Q4_K_M "$threads" > "$cache/bench-models/quantize.log" 2>&1
  mv "$shape.tmp" "$shape"
  rm -f "$shape.f16"
fi

rss_mb() { awk '/Maximum resident set size/ {printf "%.0f", $NF/1024}' "$1"; }
# On a CPU with AVX-512, our AVX2 kernels (what AVX2-only laptops run) are
# measured too, forced with MEDGEMMA_KERNELS=avx2, rather than left unmeasured.
lower=""
grep -qw avx512bw /proc/cpuinfo && lower=avx2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "### GGUF Q4_K_M on the CPU: MedGemma Desk against llama.cpp"
echo
echo "Prefill of a 512-token synthetic prompt, then 128 generated tokens; $threads threads, median of $reps runs each, alternating. llama.cpp: llama-bench from llama-cpp-python 0.3.36 (llama.cpp 0c1e570), its defaults: it times the prompt (pp512) and the generation (tg128, from an empty context) as two tests, while ours generates after the prompt, so our decode attends over 512–640 positions and llama.cpp's over 0–128. Peak RSS of the whole process (GNU time)."
echo
echo "| model | implementation | prefill (tok/s) | decode (tok/s) | peak RSS (MiB) | prefill ratio | decode ratio |"
echo "|---|---|---:|---:|---:|---:|---:|"
for model in "$real" "$shape"; do
  name=$(basename "$model" .gguf)
  echo "==> $name: $reps runs each, alternating" >&2
  : > "$tmp/ours" ; : > "$tmp/peer" ; : > "$tmp/avx2"
  for i in $(seq "$reps"); do
    # Ours as this CPU runs it, then (on AVX-512 CPUs) with the AVX2 kernels.
    for set in "" $lower; do
      env ${set:+MEDGEMMA_KERNELS=$set} /usr/bin/time -v -o "$tmp/time" "$bin" bench --model "$model" --prompt-tokens 512 \
        --gen-tokens 128 --threads "$threads" --repetitions 1 --device cpu --json 2>/dev/null | tail -1 > "$tmp/o.json"
      python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["prefill_tok_s"], r["decode_tok_s"], sys.argv[2])' \
        "$tmp/o.json" "$(rss_mb "$tmp/time")" >> "$tmp/${set:-ours}"
    done
    /usr/bin/time -v -o "$tmp/time" "$peer/build/bin/llama-bench" -m "$model" -p 512 -n 128 -t "$threads" -r 1 -o json \
      2>/dev/null > "$tmp/p.json"
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
pp = next(x["avg_ts"] for x in r if x["n_prompt"] > 0)
tg = next(x["avg_ts"] for x in r if x["n_gen"] > 0)
print(pp, tg, sys.argv[2])' "$tmp/p.json" "$(rss_mb "$tmp/time")" >> "$tmp/peer"
  done
  python3 - "$name" "$tmp/ours" "$tmp/peer" "$tmp/avx2" <<'PY'
import statistics, sys
name, ours, peer, lower = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def med(path):
    rows = [list(map(float, l.split())) for l in open(path) if l.strip()]
    return [statistics.median(c) for c in zip(*rows)]
o, p = med(ours), med(peer)
print(f"| {name} | MedGemma Desk (Candle) | {o[0]:.1f} | {o[1]:.1f} | {o[2]:.0f} | {o[0]/p[0]:.2f}× | {o[1]/p[1]:.2f}× |")
if open(lower).read().strip():
    l = med(lower)
    print(f"| {name} | MedGemma Desk, AVX2 kernels forced | {l[0]:.1f} | {l[1]:.1f} | {l[2]:.0f} | {l[0]/p[0]:.2f}× | {l[1]/p[1]:.2f}× |")
print(f"| {name} | llama.cpp (llama-bench) | {p[0]:.1f} | {p[1]:.1f} | {p[2]:.0f} | 1.00× | 1.00× |")
PY
done
echo
echo "Ratio = our tokens per second / llama.cpp's (above 1 means we are faster). \"AVX2 kernels forced\": our quantized kernels (the decode steps' products) capped at AVX2 with MEDGEMMA_KERNELS=avx2, as on a laptop without AVX-512; candle's f32 GEMM (the prompt) still picks this CPU's best, and llama.cpp is built for this CPU."
