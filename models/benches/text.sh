#!/usr/bin/env bash
# `make bench` part, for the record: prefill and decode of a decoder with
# MedGemma 4B's real shape (random f32 weights, 15.5 GB, cached), CPU, f32.
#   models/benches/text.sh PYTHON BIN [THREADS] [REPETITIONS]
set -euo pipefail
python=$1 bin=$2 threads=${3:-2} reps=${4:-3}
here="$(cd "$(dirname "$0")" && pwd)"
echo "==> Preparing the 4B-shaped text decoder (random f32 weights, cached)" >&2
dir=$("$python" "$here/text_4b_shape.py" | tail -1)
echo "==> MedGemma Desk: 128-token prefill, 16-token decode, $reps runs, $threads threads" >&2
ours=$("$bin" bench --model "$dir" --prompt-tokens 128 --gen-tokens 16 --repetitions "$reps" --threads "$threads" --device cpu --json | tail -1)
"$python" - "$ours" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print("### Gemma 3 decoder, MedGemma 4B shape (34 layers, hidden 2560), f32, CPU — for the record\n")
print(f"Median of {r['repetitions']} runs, {r['threads']} threads; random weights, {r['prompt_tokens']}-token synthetic prompt then {r['gen_tokens']} tokens.")
print("f32 weights are 15.5 GB: decode reads all of them for every token, so it is bound by memory bandwidth; laptops use the quantized GGUF path.\n")
print("| implementation | prefill (tok/s) | decode (tok/s) | load (ms) | peak RSS (MiB) |")
print("|---|---:|---:|---:|---:|")
print(f"| MedGemma Desk (Candle) | {r['prefill_tok_s']:.1f} | {r['decode_tok_s']:.2f} | {r['load_ms']:.0f} | {r['peak_rss_mb']:.0f} |")
PY
