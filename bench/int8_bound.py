#!/usr/bin/python3
"""bench/int8_bound.py — issue 20's optional int8 first pass, weighed before it is built.

Would an int8 first pass (VNNI `vpdpbusd` or AMX-INT8: int8 products summed
exactly in int32, twice VDPBF16PS's rate on AMD Zen 4) make the certified map
faster? It pays only if its proven bounds stay narrow enough: a wider bound
means more candidates rescored in FP32 and a wider proven bound on every
probability (lse_bound). This computes, in double precision with numpy, on
up neurons 0..N-1 of layer 0 normed as `map --norm full` norms them, the
bound B_v the map uses for its BF16 pass (src/lens/decode.c: the head is
BF16, x = hi + lo with hi = bf16(x)) and the bound an int8 pass would have,
and for each the candidates per neuron (top-k and bottom-k together) and the
widest B_v (the lse bound when every other token enters the normaliser with
its first-pass logit).

int8 pass (per-row scales, the fast form: one scale per head row, one per
neuron): Wq_v = round(W_v / a_v), a_v = max|W_v| / 127; xq = round(x / b),
b = max|x| / 127. The int32 sum Σ Wq_vi·xq_i is exact (|sum| ≤ 4096·127² <
2³¹), S_v = a_v·b·sum in float. Against the exact map's FMA chain R_v:

  |R_v − S_v| ≤ γ‖W_v‖‖x‖ + ‖W_v − a_v Wq_v‖‖x‖ + a_v‖Wq_v‖‖x − b xq‖ + (rounding of S_v)

(Cauchy–Schwarz on W·x − a b Wq·xq = (W − a Wq)·x + a Wq·(x − b xq)).
The BF16 pass's, for a BF16 head: γ‖W_v‖‖x‖ + ‖W_v‖‖lo‖ + γ‖W_v‖‖hi‖.

    bench/int8_bound.py MODEL [--neurons N] [--top-k 10] [--bottom-k 5]

MODEL: the 8B-shaped layer `KEEP=DIR bench/map.sh` keeps (DIR/llama-8b-1layer).
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from brute import load, tensors  # noqa: E402

U = 2.0 ** -24


def bf16(x):
    """Round-to-nearest-even to BF16, as float32 (x float32, finite)."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def candidates(s, b, top_k, bottom_k):
    """Tokens a first pass with logits s and bounds b cannot rule out."""
    n = 0
    if top_k:
        t = np.partition(s - b, -top_k)[-top_k]
        n += int(np.count_nonzero(s + b >= t))
    if bottom_k:
        t = np.partition(s + b, bottom_k - 1)[bottom_k - 1]
        n += int(np.count_nonzero(s - b <= t))
    return n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--neurons", type=int, default=32)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--bottom-k", type=int, default=5)
    a = p.parse_args()
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    eps = cfg.get("rms_norm_eps", 1e-5)
    t = tensors(a.model)
    head = load(t.get("lm_head.weight", t["model.embed_tokens.weight"]))  # BF16 values, float32
    gain = load(t["model.norm.weight"]).astype(np.float64)
    up = load(t["model.layers.0.mlp.up_proj.weight"], (0, a.neurons)).astype(np.float64)
    K = head.shape[1]
    gamma = K * U / (1 - K * U)

    hd = head.astype(np.float64)
    wnorm = np.sqrt(np.einsum("ij,ij->i", hd, hd))
    scale = np.abs(hd).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    wq = np.empty_like(hd)
    werr = np.empty(len(hd))
    for r0 in range(0, len(hd), 8192):  # in chunks: no second copy of the head
        q = np.rint(hd[r0:r0 + 8192] / scale[r0:r0 + 8192, None])
        d = hd[r0:r0 + 8192] - scale[r0:r0 + 8192, None] * q
        wq[r0:r0 + 8192] = q
        werr[r0:r0 + 8192] = np.sqrt(np.einsum("ij,ij->i", d, d))
    wqnorm = np.sqrt(np.einsum("ij,ij->i", wq, wq))

    rows = []
    for i in range(a.neurons):
        w = up[i]
        x = (gain * (w / np.sqrt(np.mean(w * w) + eps))).astype(np.float32)
        xd = x.astype(np.float64)
        exact = hd @ xd  # the true logits (R_v within γ‖W‖‖x‖)
        xn = np.linalg.norm(xd)
        hi = bf16(x).astype(np.float64)
        lo = xd - hi
        # BF16 pass: the map's S_v modelled by the exact BF16 product (its
        # FP32 rounding is inside the γ term of the bound).
        s_bf = hd @ hi
        b_bf = wnorm * (gamma * xn + np.linalg.norm(lo) + gamma * np.linalg.norm(hi)) * (1 + 4 * U)
        # int8 pass.
        bx = np.abs(xd).max() / 127.0
        xq = np.rint(xd / bx)
        s_i8 = (wq @ xq) * scale * bx
        b_i8 = (gamma * wnorm * xn + werr * xn + scale * wqnorm * np.linalg.norm(xd - bx * xq)) * (1 + 4 * U)
        for name, s, b in (("bf16", s_bf, b_bf), ("int8", s_i8, b_i8)):
            assert np.all(np.abs(exact - s) <= b), f"{name}: a logit outside its bound"
            rows.append((name, candidates(s, b, a.top_k, a.bottom_k), float(b.max()), float(np.abs(exact - s).max())))

    print(f"{a.model}: {a.neurons} up neurons of layer 0, K = {K}, vocabulary {head.shape[0]}, "
          f"top-{a.top_k} and bottom-{a.bottom_k}; every logit within its bound")
    print(f"{'pass':6} {'candidates/neuron':>18} {'(max)':>7} {'widest B_v (lse bound)':>23} {'(max)':>9} "
          f"{'actual max |S-R|':>17}")
    for name in ("bf16", "int8"):
        r = [x for x in rows if x[0] == name]
        c = np.array([x[1] for x in r])
        b = np.array([x[2] for x in r])
        e = np.array([x[3] for x in r])
        print(f"{name:6} {np.mean(c):18.1f} {c.max():7d} {np.mean(b):23.4f} {b.max():9.4f} {e.max():17.3g}")


if __name__ == "__main__":
    main()
