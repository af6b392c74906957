#!/usr/bin/env python3
"""Writes an F16 GGUF with MedGemma 4B's decoder shape (34 layers, hidden 2560,
8 heads, 4 KV heads, head_dim 256, feed-forward 10240, sliding window 1024,
RoPE x8 on global layers) and random weights, for `make bench`; gguf.sh then
quantizes it to Q4_K_M with llama.cpp's own quantizer, as the community does.

    python gguf_4b_shape.py GGUF_PY_DIR TOKENIZER_GGUF OUT.gguf

The vocabulary (262144 pieces) is copied from TOKENIZER_GGUF (the real 270M),
so both runtimes load the file as they would a real one. Tensors are written
one at a time (the file is 8.6 GB), with the gguf-py writer vendored in the
pinned llama-cpp-python.
"""
import sys

import numpy as np

sys.path.insert(0, sys.argv[1])
import gguf  # noqa: E402

H, I, L, NH, NKV, HD = 2560, 10240, 34, 8, 4, 256


def tensors(vocab):
    yield "token_embd.weight", (vocab, H)
    for i in range(L):
        p = f"blk.{i}."
        yield p + "attn_q.weight", (NH * HD, H)
        yield p + "attn_k.weight", (NKV * HD, H)
        yield p + "attn_v.weight", (NKV * HD, H)
        yield p + "attn_output.weight", (H, NH * HD)
        yield p + "attn_q_norm.weight", (HD,)
        yield p + "attn_k_norm.weight", (HD,)
        yield p + "ffn_gate.weight", (I, H)
        yield p + "ffn_up.weight", (I, H)
        yield p + "ffn_down.weight", (H, I)
        for n in ("attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"):
            yield p + n + ".weight", (H,)
    yield "output_norm.weight", (H,)


def field(reader, key):
    f = reader.fields[key]
    return [f.contents(i) for i in range(len(f.data))] if len(f.data) > 1 else f.contents()


def main():
    tok_path, out = sys.argv[2], sys.argv[3]
    src = gguf.GGUFReader(tok_path)
    tokens = field(src, "tokenizer.ggml.tokens")
    scores = field(src, "tokenizer.ggml.scores")
    types = field(src, "tokenizer.ggml.token_type")
    vocab = len(tokens)

    w = gguf.GGUFWriter(out, "gemma3")
    w.add_name("gemma-3-4b-shape-random")
    w.add_context_length(131072)
    w.add_embedding_length(H)
    w.add_block_count(L)
    w.add_feed_forward_length(I)
    w.add_head_count(NH)
    w.add_head_count_kv(NKV)
    w.add_key_length(HD)
    w.add_value_length(HD)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1_000_000.0)
    w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
    w.add_rope_scaling_factor(8.0)
    w.add_sliding_window(1024)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(False)

    shapes = list(tensors(vocab))
    for name, shape in shapes:
        dtype = np.float32 if len(shape) == 1 else np.float16
        w.add_tensor_info(name, shape, np.dtype(dtype), int(np.prod(shape)) * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(1234)
    for name, shape in shapes:
        if len(shape) == 1:
            data = np.ones(shape, dtype=np.float32)
        else:
            data = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)
        w.write_tensor_data(data)
    w.close()
    print(out)


if __name__ == "__main__":
    main()
