#!/usr/bin/env bash
# The prepared GPU check. On a machine with an NVIDIA GPU, PyTorch and
# transformers (no Rust, no network), with the binaries tests/gpu/build.sh
# made in tests/gpu/bin/:
#   1. the tiny fixture's parity on the GPU in f32, at the CPU's tolerance (1e-4);
#   2. the same in bf16, beside transformers' own bf16 deviation on the same GPU;
#   3. a MedGemma-4B-shaped random model (made here with torch): image encode,
#      time to the first token of an X-ray prompt (256 image + 300 text tokens),
#      decode tokens/s and peak GPU memory, ours against transformers (eager, sdpa);
# and writes gpu-check.md (a table for docs/benchmarks.md) and gpu-check.json
# to OUT. Without a GPU it says so and runs the CPU half (1 and 2 on the CPU,
# 3 on the tiny fixture), which CI runs; without PyTorch it leaves out
# transformers' side and says so.
#   tests/gpu/run.sh [OUT]       (default: $OUT, else target/gpu-check)
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-${OUT:-target/gpu-check}}
mkdir -p "$out"
bin=tests/gpu/bin
fixture=tests/fixtures/tiny-gemma3
export MEDGEMMA_FIXTURE_DIR=$PWD/$fixture
python=${PYTHON:-python3}
log=$out/gpu-check.log
: > "$log"
say() { echo "==> $*" | tee -a "$log" >&2; }
failures=()
rows=()

# The CUDA builds travel compressed (tests/gpu/build.sh): unpack them once.
for b in parity device_bench; do
  if [ -f "$bin/$b.xz" ] && [ ! -x "$bin/$b" ]; then
    "$python" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$bin/$b.xz" "$bin/$b" && chmod +x "$bin/$b"
  fi
done
[ -x "$bin/parity" ] && [ -x "$bin/device_bench" ] || { say "no binaries in $bin: run tests/gpu/build.sh first"; exit 2; }

# The CUDA 13 libraries the binaries were linked against, from this machine:
# PyTorch's NVIDIA wheels, or a CUDA install.
libs=$("$python" - 2>/dev/null <<'PY'
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()]
found = set()
for root in roots:
    for lib in glob.glob(os.path.join(root, "nvidia", "**", "libcublasLt.so.13*"), recursive=True) + \
               glob.glob(os.path.join(root, "nvidia", "**", "libnvrtc.so.13*"), recursive=True) + \
               glob.glob(os.path.join(root, "nvidia", "**", "libcurand.so.10*"), recursive=True) + \
               glob.glob(os.path.join(root, "nvidia", "**", "libcudart.so.13*"), recursive=True):
        found.add(os.path.dirname(lib))
print(":".join(sorted(found)))
PY
)
for d in /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64; do [ -d "$d" ] && libs=$libs:$d; done
export LD_LIBRARY_PATH=${libs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)
if [ -n "$gpu" ] && ldd "$bin/parity" | grep -q libcuda; then
  device=cuda
  say "GPU: $gpu"
else
  device=cpu
  [ -z "$gpu" ] && say "no NVIDIA GPU here: running the CPU half" || say "the binaries were built without CUDA: running the CPU half"
fi
torch_ok=$("$python" -c 'import torch, transformers; print("yes")' 2>/dev/null)
[ "$torch_ok" = yes ] || say "no PyTorch/transformers here: transformers' side is left out"
ldd "$bin/parity" | grep -q 'not found' && { say "missing libraries:"; ldd "$bin/parity" | grep 'not found' | tee -a "$log"; }

# Peak GPU memory of a process (MiB), sampled from nvidia-smi every 50 ms while it runs.
peak_of() {
  local pid=$1 peak=0 now
  while kill -0 "$pid" 2>/dev/null; do
    now=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null | awk -F', ' -v p="$pid" '$1 == p { print $2 }')
    [ -n "$now" ] && [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.05
  done
  echo "$peak"
}

# Runs a command that prints one JSON line last; echoes "JSON PEAK_MIB".
measured() {
  local tmp
  tmp=$(mktemp)
  "$@" > "$tmp" 2>> "$log" &
  local pid=$! peak=0
  if [ "$device" = cuda ]; then peak=$(peak_of "$pid"); fi
  wait "$pid" || { echo "FAILED"; rm -f "$tmp"; return 1; }
  echo "$(tail -n 1 "$tmp") $peak"
  rm -f "$tmp"
}

# 1. Parity in f32: every parity test, on the device, at 1e-4.
say "1. tiny-fixture parity on $device in f32 (max |Δlogit| ≤ 1e-4, identical greedy tokens)"
if MEDGEMMA_TEST_DEVICE=$device MEDGEMMA_TEST_PRECISION=f32 "$bin/parity" --test-threads 1 --nocapture >> "$log" 2>&1; then
  f32_worst=$(grep -o 'max |Δlogit| = [0-9.e+-]*' "$log" | awk '{ print $4 }' | sort -g | tail -n 1)
  rows+=("| parity, f32 | all tests pass | worst max abs Δlogit $f32_worst |")
else
  failures+=("parity in f32 on $device")
  rows+=("| parity, f32 | FAILED | see gpu-check.log |")
fi

# 2. bf16: transformers' own deviation sets the scale; ours must stay within 4× of it.
say "2. tiny-fixture logits on $device in bf16, beside transformers in bf16"
theirs=
if [ "$torch_ok" = yes ]; then
  theirs=$("$python" tests/gpu/reference.py parity "$fixture" --dtype bf16 2>> "$log" | tail -n 1 | "$python" -c 'import json,sys; print(json.load(sys.stdin)["worst"])')
fi
tolerance=$("$python" -c "t='$theirs'; print(f'{max(4 * float(t), 1e-3):.3g}' if t else 0.5)")
mark=$(wc -l < "$log")
if MEDGEMMA_TEST_DEVICE=$device MEDGEMMA_TEST_PRECISION=bf16 MEDGEMMA_TEST_LOGIT_TOLERANCE=$tolerance \
  "$bin/parity" logits_at_every_position image_features --test-threads 1 --nocapture >> "$log" 2>&1; then
  verdict="within $tolerance"
else
  failures+=("bf16 logits on $device beyond $tolerance")
  verdict="BEYOND $tolerance"
fi
bf16_worst=$(tail -n +"$mark" "$log" | grep -o 'max |Δlogit| = [0-9.e+-]*' | awk '{ print $4 }' | sort -g | tail -n 1)
rows+=("| parity, bf16 | ours $verdict | worst max abs Δlogit: ours $bf16_worst, transformers' own bf16 ${theirs:-not run} |")

# 3. The 4B shape on a GPU; the tiny fixture on the CPU (the plumbing only).
if [ "$device" = cuda ] && [ "$torch_ok" = yes ]; then
  model=${MODEL_DIR:-/tmp/medgemma-4b-shape}
  say "3. making the 4B-shaped random model in $model (bf16)"
  "$python" tests/gpu/reference.py make-4b "$model" >> "$log" 2>&1 || failures+=("making the 4B-shaped model")
  image=$model/chest-like.png
else
  model=$fixture/model
  image=$fixture/images/grey.png
fi
say "3. X-ray prompt on $device: ours, then transformers (eager, sdpa)"
bench_rows=()
run_bench() {
  local name=$1; shift
  local r
  if r=$(measured "$@"); then
    bench_rows+=("$name $r")
  else
    failures+=("$name")
  fi
}
run_bench ours "$bin/device_bench" --model "$model" --image "$image" --device "$device" --text-tokens 300 --gen-tokens 64 --repetitions 3
if [ "$torch_ok" = yes ]; then
  for attn in eager sdpa; do
    run_bench "transformers-$attn" "$python" tests/gpu/reference.py bench "$model" --image "$image" --attn "$attn" --text-tokens 300 --gen-tokens 64 --repetitions 3
  done
fi

printf '%s\n' "${bench_rows[@]}" > "$out/bench-lines.txt"
"$python" - "$out" "$device" "${gpu:-none}" "$model" "${#failures[@]}" > "$out/gpu-check.md" <<PY
import json, sys
out, device, gpu, model, failures = sys.argv[1:6]
rows = [l.split(" ", 1) for l in open(f"{out}/bench-lines.txt").read().splitlines() if l.strip()]
results = {}
for name, rest in rows:
    js, peak = rest.rsplit(" ", 1)
    r = json.loads(js)
    r["peak_gpu_mib"] = float(peak)
    results[name] = r
json.dump(results, open(f"{out}/gpu-check.json", "w"), indent=1)
print(f"### GPU check: {gpu}\n")
print(f"Device {device}; model {model}; tests/gpu/run.sh.\n")
print("| check | result | measured |")
print("|---|---|---|")
for r in """$(printf '%s\n' "${rows[@]}")""".splitlines():
    print(r)
print()
if results:
    ours = results.get("ours")
    print("| implementation | dtype | image encode (ms) | first token (ms) | decode (tok/s) | peak GPU memory (MiB) |")
    print("|---|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {r['impl']} | {r['dtype']} | {r['image_encode_ms']:.1f} | {r['ttft_ms']:.1f} | {r['decode_tok_s']:.1f} | {r['peak_gpu_mib']:.0f} |")
    sdpa = results.get("transformers-sdpa")
    if ours and sdpa:
        memory = f", GPU memory {ours['peak_gpu_mib'] / sdpa['peak_gpu_mib']:.2f}× theirs" if sdpa["peak_gpu_mib"] > 0 else ""
        print(f"\nOurs against transformers sdpa: first token {sdpa['ttft_ms'] / ours['ttft_ms']:.2f}× as fast, decode {ours['decode_tok_s'] / sdpa['decode_tok_s']:.2f}× as fast{memory}.")
    print(f"\nPrompt: {ours['prompt_tokens'] if ours else '?'} tokens (BOS, 300 text tokens, one image: its soft tokens between begin and end), then 64 generated tokens, median of 3; peak GPU memory sampled from nvidia-smi every 50 ms (0 without a GPU).")
PY
cat "$out/gpu-check.md"
if [ ${#failures[@]} -gt 0 ]; then
  say "failed: ${failures[*]} (details in $log)"
  exit 1
fi
say "all checks passed (details in $log)"
