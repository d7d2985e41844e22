#!/usr/bin/python3
"""bench/hf_to_llama2c.py HF_DIR OUT.bin — a Hugging Face Llama (F32/BF16
safetensors) as a legacy llama2.c checkpoint (F32) plus OUT.bin.tok, a
tokenizer .bin of placeholder tokens "t0", "t1", ...

Only for bench/map.sh, on builds whose neuromap cannot read HF directories
yet: the weights are the same numbers (BF16 widened exactly to F32), so
bench/brute.py on HF_DIR must give the same token ids. q/k rows are written
as they are (the benchmark never runs attention)."""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from brute import load, tensors  # noqa: E402


def main():
    src, out = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(src, "config.json")))
    t = tensors(src)
    dim, ffn, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    heads, kv, vocab = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"]
    seq, untied = 16, "lm_head.weight" in t
    with open(out, "wb") as f:
        f.write(struct.pack("<7i", dim, ffn, layers, heads, kv, -vocab if untied else vocab, seq))

        def put(name):
            load(t[name]).astype(np.float32).tofile(f)

        def stacked(fmt):
            for layer in range(layers):
                put(fmt % layer)

        put("model.embed_tokens.weight")
        stacked("model.layers.%d.input_layernorm.weight")
        for p in ("q_proj", "k_proj", "v_proj", "o_proj"):
            stacked("model.layers.%%d.self_attn.%s.weight" % p)
        stacked("model.layers.%d.post_attention_layernorm.weight")
        for p in ("gate_proj", "down_proj", "up_proj"):
            stacked("model.layers.%%d.mlp.%s.weight" % p)
        put("model.norm.weight")
        head_dim = dim // heads
        np.zeros(2 * seq * head_dim // 2, np.float32).tofile(f)  # freq_cis_real, freq_cis_imag
        if untied:
            put("lm_head.weight")
    with open(out + ".tok", "wb") as f:
        f.write(struct.pack("<i", 16))
        for i in range(vocab):
            b = ("t%d" % i).encode()
            f.write(struct.pack("<fi", 0.0, len(b)) + b)


if __name__ == "__main__":
    main()
