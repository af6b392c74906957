#!/usr/bin/env bash
# `make bench` part: the SigLIP vision tower at MedGemma 4B's real shape (896²,
# 27 layers, hidden 1152, random weights), image encode time of our runtime and
# of transformers (PyTorch) on the same weights and image, same thread count,
# in the same run. Prints a Markdown section on stdout.
#   models/benches/vision.sh PYTHON BIN [THREADS] [REPETITIONS]
set -euo pipefail
python=$1 bin=$2 threads=${3:-2} reps=${4:-5}
here="$(cd "$(dirname "$0")" && pwd)"
echo "==> Preparing the 4B-shaped vision tower (random weights, cached)" >&2
dir=$("$python" "$here/vision_reference.py" --prepare-only | tail -1)
echo "==> MedGemma Desk: image encode, $reps runs, $threads threads" >&2
ours=$("$bin" bench --model "$dir" --prompt-tokens 8 --gen-tokens 2 --repetitions "$reps" --threads "$threads" \
  --image "$dir/chest-like.png" --device cpu --json | tail -1)
echo "==> transformers: image encode, $reps runs, $threads threads" >&2
theirs=$("$python" "$here/vision_reference.py" --threads "$threads" --repetitions "$reps" | tail -1)
"$python" - "$ours" "$theirs" <<'PY'
import json, sys, statistics
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
a, b = ours["image_encode_ms"], theirs["median_ms"]
print("### SigLIP vision tower, MedGemma 4B shape (896×896 → 256 tokens), f32, CPU\n")
print(f"Median of {ours['repetitions']} runs, {ours['threads']} threads, same random weights and image.\n")
print("| implementation | image encode (ms) | runs (ms) | peak RSS (MiB) | ratio |")
print("|---|---:|---|---:|---:|")
print(f"| MedGemma Desk (Candle) | {a:.0f} | {', '.join(f'{x:.0f}' for x in ours['image_encode_runs_ms'])} | {ours['peak_rss_mb']:.0f} | {b / a:.2f}× |")
print(f"| transformers {theirs['transformers']} / torch {theirs['torch']} ({theirs.get('attn_implementation', 'sdpa')}) | {b:.0f} | {', '.join(f'{x:.0f}' for x in theirs['runs_ms'])} | {theirs['peak_rss_mb']:.0f} | 1.00× |")
print("\nRatio = transformers time / our time (above 1 means we are faster).")
PY
