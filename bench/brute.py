#!/usr/bin/python3
"""bench/brute.py — the neuron map the way a researcher without neuromap writes it.

numpy (Debian's python3-numpy, whose BLAS is OpenBLAS) on a Hugging Face
safetensors directory (F32 or BF16, one file or shards):

    logits = W_U @ normed(W[n0:n1+1]).T          # vocab x N, materialised
    top/bottom k by argpartition, probabilities by log-sum-exp

Writes the token ids as TSV rows `neuron rank token_id` (rank 1..K top,
-1..-K bottom, like `neuromap map`) to --out, and on stderr the seconds spent
loading (BF16 -> F32 of the head and the rows) and computing.
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np


def tensors(model_dir):
    """name -> (file, dtype, shape, offset) over every safetensors file."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    out = {}
    for name in files:
        path = os.path.join(model_dir, name)
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
        for key, t in header.items():
            if key != "__metadata__":
                out[key] = (path, t["dtype"], t["shape"], 8 + n + t["data_offsets"][0])
    return out


def load(meta, rows=None):
    """A tensor (or rows [a, b) of a matrix) as float32."""
    path, dtype, shape, offset = meta
    item = {"F32": 4, "BF16": 2}[dtype]
    cols = shape[-1] if len(shape) > 1 else 1
    a, b = rows if rows else (0, shape[0])
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=offset + a * cols * item, shape=((b - a) * cols * item,))
    if dtype == "F32":
        x = np.frombuffer(raw, dtype=np.float32).copy()
    else:
        x = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    return x.reshape((b - a, cols) if len(shape) > 1 else (shape[0],))


def ordered(logits, idx, k, descending):
    """The k selected ids per column, by logit (falling or rising), then id."""
    vals = np.take_along_axis(logits, idx, axis=0)
    out = np.empty((k, logits.shape[1]), dtype=np.int64)
    for j in range(logits.shape[1]):
        order = np.lexsort((idx[:, j], -vals[:, j] if descending else vals[:, j]))
        out[:, j] = idx[order, j]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--layer", type=int, default=0)
    p.add_argument("--neurons", default="0-1023")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--bottom-k", type=int, default=5)
    p.add_argument("--norm", choices=["full", "gain", "none"], default="full")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    n0, n1 = (int(x) for x in a.neurons.split("-"))
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    t = tensors(a.model)

    t0 = time.time()
    head = load(t.get("lm_head.weight", t["model.embed_tokens.weight"]))
    g = load(t["model.norm.weight"])
    w = load(t["model.layers.%d.mlp.up_proj.weight" % a.layer], (n0, n1 + 1))
    t1 = time.time()

    if a.norm == "full":
        rms = np.sqrt((w.astype(np.float64) ** 2).mean(axis=1) + cfg["rms_norm_eps"]).astype(np.float32)
        x = g * (w / rms[:, None])
    else:
        x = g * w if a.norm == "gain" else w
    logits = head @ x.T                                            # vocab x N
    k, kb = a.top_k, a.bottom_k
    top = ordered(logits, np.argpartition(-logits, k - 1, axis=0)[:k], k, True)
    bottom = ordered(logits, np.argpartition(logits, kb - 1, axis=0)[:kb], kb, False)
    m = logits.max(axis=0)
    lse = m + np.log(np.exp(logits - m).sum(axis=0))
    t2 = time.time()

    with open(a.out, "w") as f:
        for j in range(n1 - n0 + 1):
            for r in range(k):
                f.write("%d\t%d\t%d\n" % (n0 + j, r + 1, top[r, j]))
            for r in range(kb):
                f.write("%d\t%d\t%d\n" % (n0 + j, -(r + 1), bottom[r, j]))
    print("brute: load %.2f s, compute %.2f s (%.1f GFLOP/s), lse[0] %.6f"
          % (t1 - t0, t2 - t1, 2.0 * head.shape[0] * head.shape[1] * x.shape[0] / (t2 - t1) / 1e9, lse[0]),
          file=sys.stderr)


if __name__ == "__main__":
    main()
