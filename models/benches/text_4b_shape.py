#!/usr/bin/env python3
"""Writes a text-only Gemma 3 model folder with MedGemma 4B's real decoder shape
(34 layers, hidden 2560, 8 heads, 4 KV heads, head_dim 256, vocab 262208) and
random float32 weights, for `make bench`'s "full 4B shape, f32, CPU" record.

    python text_4b_shape.py [--dir DIR]     prints the folder (about 15.5 GB, cached)

The weights are streamed to disk tensor by tensor (the file is larger than a
comfortable share of RAM), in the safetensors layout: an 8-byte header length,
the JSON header, then the raw little-endian data.
"""
import argparse, json, os, struct, sys
from pathlib import Path

import numpy as np

H, I, L, NH, NKV, HD, V = 2560, 10240, 34, 8, 4, 256, 262208


def tensors():
    yield "model.embed_tokens.weight", (V, H)
    for i in range(L):
        p = f"model.layers.{i}."
        yield p + "self_attn.q_proj.weight", (NH * HD, H)
        yield p + "self_attn.k_proj.weight", (NKV * HD, H)
        yield p + "self_attn.v_proj.weight", (NKV * HD, H)
        yield p + "self_attn.o_proj.weight", (H, NH * HD)
        yield p + "self_attn.q_norm.weight", (HD,)
        yield p + "self_attn.k_norm.weight", (HD,)
        yield p + "mlp.gate_proj.weight", (I, H)
        yield p + "mlp.up_proj.weight", (I, H)
        yield p + "mlp.down_proj.weight", (H, I)
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"):
            yield p + n + ".weight", (H,)
    yield "model.norm.weight", (H,)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    cache = Path(os.environ.get("MEDGEMMA_CACHE", Path.home() / ".cache/medgemma-desk"))
    ap.add_argument("--dir", type=Path, default=cache / "bench/gemma3-4b-text-shape")
    a = ap.parse_args()
    d = a.dir
    done = d / ".complete"
    if done.exists():
        print(d)
        return
    d.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": H, "intermediate_size": I,
        "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": NKV, "head_dim": HD,
        "query_pre_attn_scalar": 256, "sliding_window": 1024, "sliding_window_pattern": 6, "vocab_size": V,
        "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 8.0},
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-6, "hidden_activation": "gelu_pytorch_tanh", "eos_token_id": [1, 106],
    }
    (d / "config.json").write_text(json.dumps(config, indent=2))
    header, offset = {}, 0
    for name, shape in tensors():
        n = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    rng = np.random.default_rng(4)
    with open(d / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name, shape in tensors():
            rows = shape[0]
            step = max(1, (64 << 20) // (4 * (int(np.prod(shape[1:])) or 1)))
            for r in range(0, rows, step):
                part = (min(step, rows - r),) + tuple(shape[1:])
                scale = 0.3 if len(shape) == 1 else 0.02
                f.write((rng.standard_normal(part, dtype=np.float32) * scale).astype("<f4").tobytes())
            print(f"  {name}", file=sys.stderr) if name.endswith("norm.weight") and ".33." in name else None
    done.write_text("ok\n")
    print(d)


if __name__ == "__main__":
    main()
