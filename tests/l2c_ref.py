#!/usr/bin/env python3
"""tests/l2c_ref.py — an independent reference for the lens on a llama2.c
checkpoint, in double precision and plain Python (no numpy, no neuromap
code): it reads the .bin as models/README.md lays it out and computes
logits = W_U · (g ⊙ w / sqrt(mean(w²) + eps)) for a neuron vector w.

  l2c_ref.py BIN rank TOKEN MATRICES N   the N neurons (of MATRICES, e.g.
      up,gate,down) with the highest logit for TOKEN: "matrix layer neuron logit"
  l2c_ref.py BIN top1 MATRIX LAYER NEURON   the neuron's top token id and
      the margin to the second (so a caller can tell a near-tie)
"""
import math
import struct
import sys


def load(path):
    data = open(path, "rb").read()
    dim, hidden, L, heads, kv, vocab, seq = struct.unpack_from("<7i", data, 0)
    vocab = abs(vocab)  # positive: the head is tied to the embedding
    kv_dim = dim * kv // heads
    floats = struct.unpack_from("<%df" % ((len(data) - 28) // 4), data, 28)
    at = 0

    def take(n):
        nonlocal at
        at += n
        return floats[at - n:at]

    emb = take(vocab * dim)
    take(L * dim)                      # rms_att
    take(L * dim * dim)                # wq
    take(2 * L * kv_dim * dim)         # wk, wv
    take(L * dim * dim)                # wo
    take(L * dim)                      # rms_ffn
    w1 = take(L * hidden * dim)        # gate (L, hidden, dim)
    w2 = take(L * dim * hidden)        # down (L, dim, hidden)
    w3 = take(L * hidden * dim)        # up
    g = take(dim)                      # rms_final
    return dict(dim=dim, hidden=hidden, L=L, vocab=vocab, emb=emb, w1=w1, w2=w2, w3=w3, g=g)


def vector(m, matrix, layer, n):
    dim, hidden = m["dim"], m["hidden"]
    if matrix == "down":
        base = layer * dim * hidden
        return [m["w2"][base + d * hidden + n] for d in range(dim)]
    w = m["w3"] if matrix == "up" else m["w1"]
    base = (layer * hidden + n) * dim
    return list(w[base:base + dim])


def normed(m, w, eps=1e-5):
    s = 1.0 / math.sqrt(sum(x * x for x in w) / len(w) + eps)
    return [gd * x * s for gd, x in zip(m["g"], w)]


def logit(m, v, token):
    row = m["emb"][token * m["dim"]:(token + 1) * m["dim"]]
    return math.fsum(a * b for a, b in zip(row, v))


def main():
    m = load(sys.argv[1])
    if sys.argv[2] == "rank":
        token, matrices, n = int(sys.argv[3]), sys.argv[4].split(","), int(sys.argv[5])
        order = {"up": 0, "gate": 1, "down": 2}
        all_ = [(logit(m, normed(m, vector(m, k, l, i)), token), k, l, i)
                for k in matrices for l in range(m["L"]) for i in range(m["hidden"])]
        all_.sort(key=lambda t: (-t[0], order[t[1]], t[2], t[3]))
        for x, k, l, i in all_[:n]:
            print(k, l, i, repr(x))
    else:
        k, l, i = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        v = normed(m, vector(m, k, l, i))
        logits = sorted(((logit(m, v, t), -t) for t in range(m["vocab"])), reverse=True)
        print(-logits[0][1], repr(logits[0][0] - logits[1][0]))


main()
