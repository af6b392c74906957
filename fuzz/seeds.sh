#!/usr/bin/env bash
# Seeds for each fuzz target, into fuzz/seeds/<target>/ (not committed): the
# real DICOM dev set's smaller files (fetched by tests/fixtures/dicom/fetch.sh),
# the tiny model's files, a session bundle made by the app, the shipped chat
# and report templates. The committed corpora (fuzz/corpus/) are what fuzzing
# kept from these: small inputs that each reach code the others do not.
#   fuzz/seeds.sh BIN        (BIN: the app binary, to make a bundle)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: fuzz/seeds.sh BIN}
seeds=fuzz/seeds
rm -rf "$seeds"
for t in dicom gguf safetensors shard_index bundle chat_template templates_toml; do mkdir -p "$seeds/$t"; done
tiny=tests/fixtures/tiny-gemma3

# DICOM: the dev set's files up to 64 KiB (every transfer syntax has small ones), and our PNG/JPEG.
dev=$(tests/fixtures/dicom/fetch.sh --quiet | tail -n 1)
find "$dev" -type f -size -64k ! -name '.*' | while read -r f; do
  cp "$f" "$seeds/dicom/$(sha256sum "$f" | cut -c1-16)"
done
cp "$tiny/images/grey.png" "$tiny/images/rgb.jpg" "$seeds/dicom/"

# GGUF: the tiny pair's headers and tensor tables (the first 16 KiB of each: the data is not parsed).
for g in "$tiny"/gguf/*.gguf; do head -c 16384 "$g" > "$seeds/gguf/$(basename "$g")"; done

# safetensors: a small real file (the tiny model's, cut to its header plus a little data) and an index.
python3 - "$tiny/model/model.safetensors" "$seeds" <<'PY'
import json, struct, sys
src, seeds = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
# Keep three tensors, with their data, so the file is small and still valid.
keep = [k for k in header if k != "__metadata__"][:3]
out, data, off = {}, b"", 0
for k in keep:
    a, b = header[k]["data_offsets"]
    chunk = raw[8 + n + a: 8 + n + b]
    out[k] = dict(header[k], data_offsets=[off, off + len(chunk)])
    data += chunk
    off += len(chunk)
h = json.dumps(out).encode()
open(f"{seeds}/safetensors/three-tensors.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + data)
index = {"metadata": {"total_size": off}, "weight_map": {k: "model-00001-of-00002.safetensors" for k in keep}}
index["weight_map"]["model.norm.weight"] = "model-00002-of-00002.safetensors"
open(f"{seeds}/shard_index/index.json", "w").write(json.dumps(index))
PY

# A bundle: one session drafted by the app with the tiny model, exported.
data=$(mktemp -d)
"$bin" --data-dir "$data" draft --model "$tiny/model" --image "$tiny/images/grey.png" --indication Cough --max-tokens 8 >/dev/null 2>&1
"$bin" --data-dir "$data" sessions export 1 --output "$seeds/bundle/session.mgdesk.json" >/dev/null
rm -rf "$data"

# Chat templates: the tiny model's (a real Gemma 3 template) and the fixture's variants.
cp "$tiny/model/chat_template.jinja" "$seeds/chat_template/gemma3.jinja"
python3 - "$tiny/expected/chat_template_cases.json" "$seeds/chat_template" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))
items = cases if isinstance(cases, list) else cases.get("cases", [])
for i, c in enumerate(items if isinstance(items, list) else []):
    t = c.get("template") if isinstance(c, dict) else None
    if isinstance(t, str):
        open(f"{sys.argv[2]}/case{i}.jinja", "w").write(t)
PY

# Report templates: the shipped ones.
cp assets/templates/*.toml "$seeds/templates_toml/"
for t in "$seeds"/*; do echo "$(basename "$t"): $(ls "$t" | wc -l) seeds" >&2; done
