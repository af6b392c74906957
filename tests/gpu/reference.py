#!/usr/bin/env python3
"""The transformers side of the GPU check (tests/gpu/run.sh), on the GPU
machine's own PyTorch and transformers (no network there).

    reference.py make-4b DIR            a seeded random Gemma3ForConditionalGeneration
                                        with MedGemma 4B's real shape, bf16, saved as a
                                        Hub checkpoint, plus chest-like.png
    reference.py bench DIR --image PNG  image encode, time to the first token of an
                                        X-ray prompt, decode tok/s, peak GPU memory
    reference.py parity FIXTURE         transformers in bf16 on the GPU against the
                                        fixture's float32 reference: its own max |Δlogit|

Each command prints one JSON line on stdout (logs go to stderr). The prompt's
token ids are built exactly as models/examples/device_bench.rs builds them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

SEED = 1234


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def xray_prompt(text_tokens: int, vocab: int, mm: int, boi: int, image: int, eoi: int) -> list[int]:
    """device_bench.rs's xray_prompt: BOS, half the text, the image, the rest."""
    span = max(min(1000, vocab - 300), 1)
    text = lambda start, n: [300 + (i * 7919 % span) for i in range(start, start + n)]
    half = text_tokens // 2
    return [2] + text(0, half) + [boi] + [image] * mm + [eoi] + text(half, text_tokens - half)


def config_4b():
    from transformers import Gemma3Config

    text = dict(
        hidden_size=2560, intermediate_size=10240, num_hidden_layers=34, num_attention_heads=8,
        num_key_value_heads=4, head_dim=256, vocab_size=262208, query_pre_attn_scalar=256,
        sliding_window=1024, rope_theta=1_000_000.0, rope_local_base_freq=10_000.0,
        rope_scaling={"rope_type": "linear", "factor": 8.0}, max_position_embeddings=131072,
        rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
    )
    vision = dict(
        hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
        image_size=896, patch_size=14, layer_norm_eps=1e-6, vision_use_head=False,
    )
    return Gemma3Config(
        text_config=text, vision_config=vision, mm_tokens_per_image=256,
        image_token_index=262144, boi_token_index=255999, eoi_token_index=256000,
    )


def make_4b(d: Path):
    from PIL import Image
    from transformers import Gemma3ForConditionalGeneration

    if (d / ".complete").exists():
        print(json.dumps({"dir": str(d), "made": False}))
        return
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    t = time.time()
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        torch.set_default_dtype(torch.bfloat16)
        model = Gemma3ForConditionalGeneration(config_4b())
        torch.set_default_dtype(torch.float32)
    model.save_pretrained(d, safe_serialization=True)
    (d / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Gemma3ImageProcessor", "do_resize": True, "size": {"height": 896, "width": 896},
        "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_convert_rgb": True,
    }))
    # A chest-like grey image: a bright mediastinum between two darker lungs.
    y, x = np.mgrid[0:1024, 0:1024] / 1024.0
    lungs = np.exp(-(((x - 0.3) / 0.15) ** 2 + ((y - 0.5) / 0.3) ** 2)) + np.exp(-(((x - 0.7) / 0.15) ** 2 + ((y - 0.5) / 0.3) ** 2))
    grey = np.clip(220 - 150 * lungs, 0, 255).astype(np.uint8)
    Image.fromarray(grey, "L").save(d / "chest-like.png")
    (d / ".complete").write_text("ok\n")
    log(f"made the 4B-shaped model in {time.time() - t:.0f} s")
    print(json.dumps({"dir": str(d), "made": True}))


def pixels_of(image: Path, size: int, device, dtype):
    """The image as Gemma 3's processor prepares it (PIL bilinear to size², 1/255, mean/std 0.5)."""
    from PIL import Image

    img = Image.open(image).convert("RGB").resize((size, size), Image.BILINEAR)
    a = (np.asarray(img, dtype=np.float32) / 255.0 - 0.5) / 0.5
    return torch.from_numpy(a.transpose(2, 0, 1).copy())[None].to(device=device, dtype=dtype)


def load(cls, d: Path, dtype, **kw):
    """from_pretrained in the given dtype (transformers 5 calls it `dtype`, 4.x `torch_dtype`)."""
    try:
        return cls.from_pretrained(d, dtype=dtype, **kw)
    except TypeError:
        return cls.from_pretrained(d, torch_dtype=dtype, **kw)


def gpu_memory_mib() -> float:
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0


def bench(d: Path, image: Path, attn: str, text_tokens: int, gen_tokens: int, reps: int):
    import transformers
    from transformers import Gemma3ForConditionalGeneration

    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t = time.time()
    # bf16 on a GPU, f32 on the CPU: as our runtime chooses.
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = load(Gemma3ForConditionalGeneration, d, dtype, attn_implementation=attn).to(device).eval()
    sync()
    load_ms = (time.time() - t) * 1e3
    c = model.config
    ids = torch.tensor([xray_prompt(text_tokens, c.text_config.vocab_size, c.mm_tokens_per_image, c.boi_token_index, c.image_token_index, c.eoi_token_index)], device=device)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    pixels = pixels_of(image, c.vision_config.image_size, device, dtype)
    # The prompt as the processor gives it: a mask, and 1 at image soft tokens
    # (attention is bidirectional inside an image).
    kw = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": (ids == c.image_token_index).long(), "pixel_values": pixels}
    with torch.inference_mode():
        model.generate(**kw, max_new_tokens=2, min_new_tokens=2, do_sample=False)  # warm-up
        encode, ttft, decode = [], [], []
        for _ in range(reps):
            sync(); t = time.perf_counter()
            model.get_image_features(pixel_values=pixels)
            sync(); encode.append((time.perf_counter() - t) * 1e3)
        for _ in range(reps):
            sync(); t = time.perf_counter()
            model.generate(**kw, max_new_tokens=1, min_new_tokens=1, do_sample=False)
            sync(); first = time.perf_counter() - t
            t = time.perf_counter()
            model.generate(**kw, max_new_tokens=gen_tokens, min_new_tokens=gen_tokens, do_sample=False)
            sync(); whole = time.perf_counter() - t
            ttft.append(first * 1e3)
            decode.append((gen_tokens - 1) / max(whole - first, 1e-9))
    med = lambda v: float(np.median(v))
    print(json.dumps({
        "impl": f"transformers {transformers.__version__} ({attn})", "torch": torch.__version__, "device": device,
        "dtype": str(dtype).removeprefix("torch.").replace("bfloat16", "bf16").replace("float32", "f32"), "prompt_tokens": ids.shape[1], "gen_tokens": gen_tokens, "repetitions": reps, "load_ms": load_ms,
        "image_encode_ms": med(encode), "image_encode_runs_ms": encode, "ttft_ms": med(ttft), "ttft_runs_ms": ttft,
        "decode_tok_s": med(decode), "decode_runs_tok_s": decode, "torch_peak_allocated_mib": gpu_memory_mib(),
    }))


def parity(fixture: Path, dtype: str):
    """transformers on the fixture's cases in `dtype` on the GPU: max |Δlogit| against its own float32 run."""
    from safetensors.torch import load_file
    from transformers import Gemma3ForConditionalGeneration

    device = "cuda" if torch.cuda.is_available() else "cpu"
    cases = json.loads((fixture / "expected/cases.json").read_text())["cases"]
    tensors = load_file(fixture / "expected/tensors.safetensors")
    model = load(Gemma3ForConditionalGeneration, fixture / "model", {"bf16": torch.bfloat16, "f32": torch.float32}[dtype]).to(device).eval()
    out = {}
    with torch.inference_mode():
        for c in cases:
            name = c["name"]
            ids = torch.tensor([c["input_ids"]], device=device)
            # 1 at image soft tokens: attention is bidirectional inside each image.
            kw = {"token_type_ids": (ids == model.config.image_token_index).long()}
            if f"{name}.pixel_values" in tensors:
                kw["pixel_values"] = tensors[f"{name}.pixel_values"].to(device=device, dtype=model.dtype)
            logits = model(input_ids=ids, **kw).logits[0].float().cpu()
            out[name] = float((logits - tensors[f"{name}.logits"]).abs().max())
    print(json.dumps({"impl": "transformers", "device": device, "dtype": dtype, "max_abs_dlogit": out, "worst": max(out.values())}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-4b"); m.add_argument("dir", type=Path)
    b = sub.add_parser("bench"); b.add_argument("dir", type=Path); b.add_argument("--image", type=Path, required=True)
    b.add_argument("--attn", default="sdpa")
    b.add_argument("--text-tokens", type=int, default=300); b.add_argument("--gen-tokens", type=int, default=64)
    b.add_argument("--repetitions", type=int, default=3)
    p = sub.add_parser("parity"); p.add_argument("fixture", type=Path); p.add_argument("--dtype", default="bf16")
    a = ap.parse_args()
    if a.cmd == "make-4b":
        make_4b(a.dir)
    elif a.cmd == "bench":
        bench(a.dir, a.image, a.attn, a.text_tokens, a.gen_tokens, a.repetitions)
    else:
        parity(a.fixture, a.dtype)


if __name__ == "__main__":
    main()
