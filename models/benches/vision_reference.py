#!/usr/bin/env python3
"""Reference timing of MedGemma 4B's image path in Hugging Face transformers.

What it measures: `Gemma3ForConditionalGeneration.get_image_features(pixel_values)`
for one 896x896 image (SigLIP vision tower, 27 layers over 64x64 = 4096 patches,
then the 4x4 average pool to 256 tokens, the soft-embedding RMSNorm and the
[1152, 2560] projection), float32, CPU, `torch.inference_mode()`, with
`torch.set_num_threads(--threads)`: one warm-up run, then `--repetitions` timed
runs. That is the same work as `Model::image_features` in the Rust crate.

The model is NOT MedGemma's weights (no download, no licence): it is a seeded
random model with MedGemma 4B's exact vision shape and a minimal text decoder,
laid out like a Hub checkpoint, created once and cached in

    ${MEDGEMMA_CACHE:-~/.cache/medgemma-desk}/bench/siglip-4b-shape/
        config.json               Gemma3ForConditionalGeneration, Hub format
        preprocessor_config.json  Gemma3ImageProcessor, 896x896
        model.safetensors         ~1.7 GB, float32, Hub (transformers 4.5x) tensor
                                  names: language_model.model.*,
                                  vision_tower.vision_model.*, multi_modal_projector.*
        chest-like.png            1024x1024 8-bit grey test image (drawn with numpy)
        features.safetensors      what transformers computes for chest-like.png:
                                  "image_features" [256, 2560] f32 and the exact
                                  "pixel_values" [3, 896, 896] f32 it was given

Vision tower (real MedGemma 4B / SigLIP so400m shape): image_size 896, patch 14,
hidden 1152, intermediate 4304, 27 layers, 16 heads, layer_norm_eps 1e-6,
vision_use_head false, mm_tokens_per_image 256. Text decoder (as small as the
loaders accept): hidden 2560 (so the projector has its real [1152, 2560] shape),
1 layer, vocab 300, intermediate 64, 1 head, 1 kv head, head_dim 32. Weights are
random (torch.manual_seed(SEED), sorted tensor-name order), norm weights random
and non-zero. The folder is checked on every run (file names, tensor names and
shapes, a recipe stamp in the safetensors metadata, file sizes) and rebuilt only
when something is missing or stale; building it takes about a minute.

How `make bench` uses it (the venv lives outside the repository):

    python3 -m venv ~/.cache/medgemma-desk/venv-fixtures
    ~/.cache/medgemma-desk/venv-fixtures/bin/pip install -r models/benches/requirements.txt
    PY=~/.cache/medgemma-desk/venv-fixtures/bin/python

    # 1. make sure the cached model folder exists (prints its path on stdout)
    $PY models/benches/vision_reference.py --prepare-only
    # 2. the Rust vision benchmark loads that folder with medgemma_models::Model,
    #    times Model::image_features on chest-like.png with the same thread count,
    #    and checks its output against features.safetensors (max abs diff)
    # 3. the reference timing; stdout is exactly one JSON line, logs go to stderr
    $PY models/benches/vision_reference.py --threads 2 --repetitions 5

The JSON line:

    {"impl": "transformers", "torch": "2.15.0", "transformers": "5.23.0",
     "threads": 2, "median_ms": ..., "runs_ms": [...], "peak_rss_mb": ...,
     "attn_implementation": "sdpa", "load_ms": ..., "features_max_abs_diff": ...}

peak_rss_mb is this process's peak resident set (getrusage ru_maxrss): Python +
torch + the loaded model + the largest activations. When the folder has to be
built, that happens in a child process so it does not count. features_max_abs_diff
compares this run's warm-up output with the cached features.safetensors (it is
~0 on the machine and thread count that wrote them).

Options: --threads T (default 2), --repetitions R (default 5), --prepare-only,
--dir DIR (another folder), --attn sdpa|eager (default sdpa, transformers'
default for SigLIP; eager materialises 16x4096x4096 attention weights, ~1 GB a
layer), --rebuild (remake the folder even if it looks valid).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

RECIPE = "medgemma-desk/bench/siglip-4b-shape/v1"
SEED = 20250611
IMAGE_SIDE = 1024  # chest-like.png, resized to 896 by the processor

VISION = dict(
    hidden_size=1152,
    intermediate_size=4304,
    num_hidden_layers=27,
    num_attention_heads=16,
    num_channels=3,
    image_size=896,
    patch_size=14,  # 64 x 64 = 4096 patches
    layer_norm_eps=1e-6,
    hidden_act="gelu_pytorch_tanh",
    vision_use_head=False,
    attention_dropout=0.0,
)
TEXT = dict(
    vocab_size=300,
    hidden_size=2560,  # the real 4B width: the projector is [1152, 2560]
    intermediate_size=64,
    num_hidden_layers=1,
    num_attention_heads=1,
    num_key_value_heads=1,
    head_dim=32,
    query_pre_attn_scalar=32,
    sliding_window=64,
    max_position_embeddings=4096,
    rope_theta=1_000_000.0,
    rope_scaling={"rope_type": "linear", "factor": 8.0},
    rope_local_base_freq=10_000.0,
    hidden_activation="gelu_pytorch_tanh",
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    pad_token_id=0,
    bos_token_id=2,
    eos_token_id=1,
)
MM_TOKENS_PER_IMAGE = 256  # 64x64 patches average-pooled 4x4 to 16x16
TOKENS = dict(boi_token_index=7, eoi_token_index=8, image_token_index=9)  # inside the 300-row vocabulary

PREPROCESSOR = {
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_pan_and_scan": False,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_processor_type": "Gemma3ImageProcessor",
    "image_seq_length": MM_TOKENS_PER_IMAGE,
    "image_std": [0.5, 0.5, 0.5],
    "pan_and_scan_max_num_crops": None,
    "pan_and_scan_min_crop_size": None,
    "pan_and_scan_min_ratio_to_activate": None,
    "processor_class": "Gemma3Processor",
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
    "size": {"height": VISION["image_size"], "width": VISION["image_size"]},
}

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
IMAGE_FILE = "chest-like.png"
FEATURES_FILE = "features.safetensors"


def log(*args) -> None:
    print("[vision_reference]", *args, file=sys.stderr, flush=True)


def default_dir() -> Path:
    cache = os.environ.get("MEDGEMMA_CACHE") or str(Path.home() / ".cache" / "medgemma-desk")
    return Path(cache).expanduser() / "bench" / "siglip-4b-shape"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--repetitions", type=int, default=5, help="timed runs after one warm-up (default 5)")
    ap.add_argument("--prepare-only", action="store_true", help="make sure the model folder exists, print its path, exit")
    ap.add_argument("--dir", type=Path, default=None, help="model folder (default ${MEDGEMMA_CACHE:-~/.cache/medgemma-desk}/bench/siglip-4b-shape)")
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa", help="attention implementation (default sdpa)")
    ap.add_argument("--rebuild", action="store_true", help="remake the folder even if it looks valid")
    args = ap.parse_args()
    if args.threads < 1 or args.repetitions < 1:
        ap.error("--threads and --repetitions must be at least 1")
    args.dir = (args.dir or default_dir()).expanduser().resolve()
    return args


ARGS = parse_args()
# Before torch is imported, so OpenMP / MKL start with the right pool size.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoImageProcessor, Gemma3Config, Gemma3ForConditionalGeneration  # noqa: E402


# --------------------------------------------------------------------------- small helpers


def torch_version() -> str:
    return torch.__version__.split("+")[0]


def peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024  # bytes on macOS, KiB on Linux


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_json_atomic(path: Path, obj) -> None:
    tmp = tmp_path(path)
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- what the folder holds


def make_config() -> Gemma3Config:
    cfg = Gemma3Config(
        text_config=dict(TEXT),
        vision_config=dict(VISION),
        mm_tokens_per_image=MM_TOKENS_PER_IMAGE,
        initializer_range=0.02,
        tie_word_embeddings=True,
        **TOKENS,
    )
    cfg.architectures = ["Gemma3ForConditionalGeneration"]
    cfg.dtype = torch.float32
    return cfg


def config_json() -> dict:
    d = make_config().to_dict()
    d.pop("_name_or_path", None)
    return json.loads(json.dumps(d, sort_keys=True))  # plain JSON types, stable order


def expected_tensors() -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor of model.safetensors in the Hub layout, sorted by name.
    Linear weights are [out, in]; the projector is [vision_hidden, text_hidden] (x @ W);
    lm_head is tied to the embedding and not stored."""
    v, t = VISION, TEXT
    vh, vi, th = v["hidden_size"], v["intermediate_size"], t["hidden_size"]
    q_out = t["num_attention_heads"] * t["head_dim"]
    kv_out = t["num_key_value_heads"] * t["head_dim"]
    patches = (v["image_size"] // v["patch_size"]) ** 2
    out: dict[str, tuple[int, ...]] = {}
    lm = "language_model.model."
    out[lm + "embed_tokens.weight"] = (t["vocab_size"], th)
    out[lm + "norm.weight"] = (th,)
    for i in range(t["num_hidden_layers"]):
        p = f"{lm}layers.{i}."
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"):
            out[p + n + ".weight"] = (th,)
        out[p + "self_attn.q_proj.weight"] = (q_out, th)
        out[p + "self_attn.k_proj.weight"] = (kv_out, th)
        out[p + "self_attn.v_proj.weight"] = (kv_out, th)
        out[p + "self_attn.o_proj.weight"] = (th, q_out)
        out[p + "self_attn.q_norm.weight"] = (t["head_dim"],)
        out[p + "self_attn.k_norm.weight"] = (t["head_dim"],)
        out[p + "mlp.gate_proj.weight"] = (t["intermediate_size"], th)
        out[p + "mlp.up_proj.weight"] = (t["intermediate_size"], th)
        out[p + "mlp.down_proj.weight"] = (th, t["intermediate_size"])
    vm = "vision_tower.vision_model."
    out[vm + "embeddings.patch_embedding.weight"] = (vh, v["num_channels"], v["patch_size"], v["patch_size"])
    out[vm + "embeddings.patch_embedding.bias"] = (vh,)
    out[vm + "embeddings.position_embedding.weight"] = (patches, vh)
    for i in range(v["num_hidden_layers"]):
        p = f"{vm}encoder.layers.{i}."
        for n in ("layer_norm1", "layer_norm2"):
            out[p + n + ".weight"] = (vh,)
            out[p + n + ".bias"] = (vh,)
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out[p + f"self_attn.{n}.weight"] = (vh, vh)
            out[p + f"self_attn.{n}.bias"] = (vh,)
        out[p + "mlp.fc1.weight"] = (vi, vh)
        out[p + "mlp.fc1.bias"] = (vi,)
        out[p + "mlp.fc2.weight"] = (vh, vi)
        out[p + "mlp.fc2.bias"] = (vh,)
    out[vm + "post_layernorm.weight"] = (vh,)
    out[vm + "post_layernorm.bias"] = (vh,)
    out["multi_modal_projector.mm_input_projection_weight"] = (vh, th)
    out["multi_modal_projector.mm_soft_emb_norm.weight"] = (vh,)
    return sorted(out.items())


def hub_name(module_key: str) -> str | None:
    """transformers 5 state-dict key -> Hub (4.5x) checkpoint name; None for the tied lm_head."""
    if module_key == "lm_head.weight":
        return None
    for new, old in (
        ("model.language_model.", "language_model.model."),
        ("model.vision_tower.vision_model.", "vision_tower.vision_model."),
        ("model.vision_tower.", "vision_tower.vision_model."),
        ("model.multi_modal_projector.", "multi_modal_projector."),
    ):
        if module_key.startswith(new):
            return old + module_key[len(new) :]
    raise RuntimeError(f"no Hub name for {module_key}")


def check_names_against_transformers() -> None:
    """The hand-written tensor list must be exactly what transformers' module tree holds."""
    with torch.device("meta"):
        model = Gemma3ForConditionalGeneration(make_config())
    got = {}
    for k, p in model.state_dict().items():
        name = hub_name(k)
        if name is not None:
            got[name] = tuple(p.shape)
    want = dict(expected_tensors())
    if got != want:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        shapes = sorted(k for k in set(got) & set(want) if got[k] != want[k])
        raise RuntimeError(f"tensor list differs from transformers: missing {missing[:5]}, extra {extra[:5]}, shapes {shapes[:5]}")


def init_tensor(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """One tensor from the global torch generator (seeded once, tensors drawn in name order).
    Scales keep activations O(1) through 27 residual layers; every norm weight is random."""
    def normal(std: float, mean: float = 0.0) -> torch.Tensor:
        return torch.randn(shape, dtype=torch.float32) * std + mean

    if name.endswith("embed_tokens.weight"):
        return normal(0.35)
    if name.startswith("language_model.") and "norm" in name:  # Gemma RMSNorm: x * (1 + w)
        return normal(0.5)
    if name.endswith("mm_soft_emb_norm.weight"):  # Gemma RMSNorm too
        return normal(0.5)
    if name.endswith("mm_input_projection_weight"):  # [1152, 2560], x @ W: outputs ~ N(0, 1)
        return normal(1.0 / math.sqrt(shape[0]))
    if "layer_norm" in name or "layernorm" in name:  # SigLIP LayerNorm: x * w + b
        return normal(0.25, 1.0) if name.endswith(".weight") else normal(0.1)
    if name.endswith("position_embedding.weight"):
        return normal(0.5)
    if name.endswith(".bias"):
        return normal(0.1)
    if len(shape) >= 2:  # linear [out, in] and the patch conv [out, 3, 14, 14]
        return normal(1.0 / math.sqrt(math.prod(shape[1:])))
    raise RuntimeError(f"no init rule for {name} {shape}")


# --------------------------------------------------------------------------- safetensors, streamed


def model_metadata() -> dict[str, str]:
    return {"format": "pt", "recipe": RECIPE, "seed": str(SEED)}


def read_safetensors_header(path: Path) -> tuple[dict, int] | None:
    """(header, data_end) of a safetensors file, or None if it is not one."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100_000_000:
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error):
        return None
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    return header, 8 + n + (max(ends) if ends else 0)


def write_model_streaming(path: Path) -> None:
    """Writes model.safetensors one tensor at a time (peak memory: one tensor, not 1.7 GB)."""
    assert sys.byteorder == "little"
    specs = expected_tensors()
    header: dict = {"__metadata__": model_metadata()}
    offset = 0
    for name, shape in specs:
        size = math.prod(shape) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # data starts 8-byte aligned
    torch.manual_seed(SEED)
    tmp = tmp_path(path)
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name, shape in specs:
            t = init_tensor(name, shape).contiguous()
            assert t.dtype == torch.float32 and tuple(t.shape) == shape
            f.write(t.numpy().data)
    os.replace(tmp, path)


def model_is_valid(d: Path) -> tuple[bool, str]:
    cfg = read_json(d / CONFIG_FILE)
    if cfg is None:
        return False, "no config.json"
    want = config_json()
    cfg.pop("transformers_version", None)
    want.pop("transformers_version", None)
    if cfg != want:
        return False, "config.json differs"
    if read_json(d / PREPROCESSOR_FILE) != PREPROCESSOR:
        return False, "preprocessor_config.json missing or different"
    hdr = read_safetensors_header(d / MODEL_FILE)
    if hdr is None:
        return False, "no readable model.safetensors"
    header, end = hdr
    if header.get("__metadata__") != model_metadata():
        return False, "model.safetensors is from another recipe"
    got = {k: (v.get("dtype"), tuple(v.get("shape", ()))) for k, v in header.items() if k != "__metadata__"}
    if got != {k: ("F32", s) for k, s in expected_tensors()}:
        return False, "model.safetensors has other tensors"
    if (d / MODEL_FILE).stat().st_size != end:
        return False, "model.safetensors is truncated"
    return True, "ok"


# --------------------------------------------------------------------------- the test image


def chest_like_pixels() -> np.ndarray:
    """A 1024x1024 grey 'chest X-ray' from plain float64 arithmetic (no PIL drawing), so
    the pixels are the same everywhere: a gradient, two dark lungs with rib bands, a
    bright spine and heart, uint8."""
    n = IMAGE_SIDE
    y, x = np.mgrid[0:n, 0:n].astype(np.float64) / (n - 1)
    img = 70.0 + 80.0 * y + 30.0 * x

    def blob(cx, cy, rx, ry):  # 1 inside, soft linear edge
        d = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
        return np.clip((1.0 - d) * 4.0, 0.0, 1.0)

    lungs = blob(0.31, 0.48, 0.17, 0.33) + blob(0.69, 0.48, 0.17, 0.33)
    img -= 75.0 * lungs
    ribs = np.abs(((y * 14.0) % 1.0) - 0.5) * 2.0  # triangle wave, 14 bands
    img += 35.0 * lungs * np.clip((ribs - 0.6) * 5.0, 0.0, 1.0)
    img += 90.0 * np.clip(1.0 - np.abs(x - 0.5) / 0.045, 0.0, 1.0)  # spine
    img += 45.0 * blob(0.57, 0.66, 0.14, 0.12)  # heart
    img += 25.0 * np.clip((np.abs(x - 0.5) - 0.42) * 12.0, 0.0, 1.0)  # soft tissue at the edges
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def image_is_valid(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.load()
            return im.size == (IMAGE_SIDE, IMAGE_SIDE) and im.mode == "L"
    except Exception:  # noqa: BLE001 - unreadable is invalid
        return False


def write_image(path: Path) -> None:
    tmp = tmp_path(path)
    Image.fromarray(chest_like_pixels()).save(tmp, format="PNG", optimize=False)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the reference


def load_model(d: Path, attn: str):
    model, info = Gemma3ForConditionalGeneration.from_pretrained(
        str(d), dtype=torch.float32, attn_implementation=attn, output_loading_info=True
    )
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if info.get(k):
            raise RuntimeError(f"{d}: transformers reports {k}: {sorted(info[k])[:10]}")
    return model.eval()


def pixel_values_for(d: Path) -> torch.Tensor:
    processor = AutoImageProcessor.from_pretrained(str(d), backend="pil")
    with Image.open(d / IMAGE_FILE) as im:
        im.load()
        pv = processor(images=[im], return_tensors="pt")["pixel_values"]
    side = VISION["image_size"]
    assert tuple(pv.shape) == (1, 3, side, side) and pv.dtype == torch.float32, (pv.shape, pv.dtype)
    return pv


def image_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    out = model.get_image_features(pixel_values)
    return out.pooler_output if hasattr(out, "pooler_output") else out


def features_are_valid(d: Path) -> bool:
    path = d / FEATURES_FILE
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception:  # noqa: BLE001
        return False
    side = VISION["image_size"]
    return (
        meta.get("recipe") == RECIPE
        and meta.get("image_sha256") == sha256_file(d / IMAGE_FILE)
        and shapes.get("image_features") == (MM_TOKENS_PER_IMAGE, TEXT["hidden_size"])
        and shapes.get("pixel_values") == (3, side, side)
    )


def verify_and_write_features(d: Path, attn: str, threads: int) -> None:
    """Loads the folder in transformers exactly as a user would, checks nothing was lost
    in the renaming (every tensor equal to the file's), then writes features.safetensors."""
    model = load_model(d, attn)
    n = 0
    with safe_open(str(d / MODEL_FILE), "pt") as f:
        names = set(f.keys())
        for k, p in model.state_dict().items():
            name = hub_name(k)
            if name is None:
                continue
            if not torch.equal(p, f.get_tensor(name)):
                raise RuntimeError(f"{k} differs from {name} in {MODEL_FILE}")
            names.discard(name)
            n += 1
    if names:
        raise RuntimeError(f"tensors in the file that the model did not use: {sorted(names)[:10]}")
    if model.lm_head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
        raise RuntimeError("lm_head is not tied to embed_tokens")
    log(f"transformers loads {d.name}: no missing / unexpected keys, {n} tensors equal to the file")

    pv = pixel_values_for(d)
    with torch.inference_mode():
        feats = image_features(model, pv)
    shape = (1, MM_TOKENS_PER_IMAGE, TEXT["hidden_size"])
    assert tuple(feats.shape) == shape, feats.shape
    if not torch.isfinite(feats).all():
        raise RuntimeError("image features are not finite")
    log(f"image features: mean {feats.mean():.4f}, std {feats.std():.4f}, max |x| {feats.abs().max():.4f}")
    path = d / FEATURES_FILE
    tmp = tmp_path(path)
    meta = {
        "format": "pt",
        "recipe": RECIPE,
        "image": IMAGE_FILE,
        "image_sha256": sha256_file(d / IMAGE_FILE),
        "pixel_values": "Gemma3ImageProcessor (PIL backend) of the image: RGB, bilinear 896x896, (x/255 - 0.5)/0.5",
        "torch": torch_version(),
        "transformers": transformers.__version__,
        "threads": str(threads),
        "attn_implementation": attn,
    }
    save_file(
        {"image_features": feats[0].contiguous(), "pixel_values": pv[0].contiguous()},
        str(tmp),
        metadata=meta,
    )
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # safetensors creates the file 0600; make it like the others
    os.replace(tmp, path)


def prepare(d: Path, attn: str, threads: int, rebuild: bool) -> None:
    """Makes the folder valid, doing only the steps that are missing."""
    torch.set_num_threads(threads)
    d.mkdir(parents=True, exist_ok=True)
    ok, why = (False, "--rebuild") if rebuild else model_is_valid(d)
    if not ok:
        log(f"building the model in {d} ({why})")
        t0 = time.perf_counter()
        check_names_against_transformers()
        (d / FEATURES_FILE).unlink(missing_ok=True)  # stale once the weights are rewritten
        write_json_atomic(d / CONFIG_FILE, config_json() | {"transformers_version": transformers.__version__})
        write_json_atomic(d / PREPROCESSOR_FILE, PREPROCESSOR)
        write_model_streaming(d / MODEL_FILE)
        ok, why = model_is_valid(d)
        assert ok, why
        log(f"wrote {MODEL_FILE} ({(d / MODEL_FILE).stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.1f} s")
    if rebuild or not image_is_valid(d / IMAGE_FILE):
        write_image(d / IMAGE_FILE)
        log(f"wrote {IMAGE_FILE}")
    if rebuild or not features_are_valid(d):
        t0 = time.perf_counter()
        verify_and_write_features(d, attn, threads)
        log(f"verified the folder and wrote {FEATURES_FILE} in {time.perf_counter() - t0:.1f} s")


def folder_is_ready(d: Path) -> bool:
    return model_is_valid(d)[0] and image_is_valid(d / IMAGE_FILE) and features_are_valid(d)


def main() -> int:
    a = ARGS
    d: Path = a.dir
    if a.prepare_only:
        t0 = time.perf_counter()
        prepare(d, a.attn, a.threads, a.rebuild)
        log(f"folder ready in {time.perf_counter() - t0:.1f} s: {d}")
        print(d)
        return 0

    if a.rebuild or not folder_is_ready(d):
        # In a child process, so building does not count in this process's peak RSS.
        t0 = time.perf_counter()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--prepare-only", "--dir", str(d),
               "--threads", str(a.threads), "--attn", a.attn] + (["--rebuild"] if a.rebuild else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        log(f"prepared {d} in {time.perf_counter() - t0:.1f} s")

    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    t0 = time.perf_counter()
    model = load_model(d, a.attn)
    load_ms = (time.perf_counter() - t0) * 1e3
    pv = pixel_values_for(d)
    with safe_open(str(d / FEATURES_FILE), "pt") as f:
        ref = f.get_tensor("image_features")
        ref_pv = f.get_tensor("pixel_values")
    if not torch.equal(pv[0], ref_pv):
        log(f"note: pixel_values differ from {FEATURES_FILE} by {float((pv[0] - ref_pv).abs().max()):.3g}")
    log(f"loaded in {load_ms:.0f} ms; torch {torch_version()}, transformers {transformers.__version__}, "
        f"{torch.get_num_threads()} threads, attn {a.attn}")

    runs_ms = []
    with torch.inference_mode():
        t0 = time.perf_counter()
        feats = image_features(model, pv)
        warm_ms = (time.perf_counter() - t0) * 1e3
        diff = float((feats[0] - ref).abs().max())
        log(f"warm-up {warm_ms:.0f} ms; max |features - {FEATURES_FILE}| = {diff:.3g}")
        for i in range(a.repetitions):
            t0 = time.perf_counter()
            image_features(model, pv)
            runs_ms.append((time.perf_counter() - t0) * 1e3)
            log(f"run {i + 1}/{a.repetitions}: {runs_ms[-1]:.0f} ms")

    result = {
        "impl": "transformers",
        "torch": torch_version(),
        "transformers": transformers.__version__,
        "threads": a.threads,
        "median_ms": round(statistics.median(runs_ms), 1),
        "runs_ms": [round(t, 1) for t in runs_ms],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "attn_implementation": a.attn,
        "load_ms": round(load_ms, 1),
        "features_max_abs_diff": diff,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
