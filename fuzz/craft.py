#!/usr/bin/env python3
"""fuzz/craft.py — writes the small hand-made inputs in tests/fuzz-regressions/.

Tiny but valid models (a few hundred bytes) let libFuzzer reach the success
paths thousands of times a second; the fixtures in ../shared (about 1 MB each)
are added as seeds at run time by fuzz/run.sh. Standard library only.
Run from the repository root: python3 fuzz/craft.py
"""
import os
import struct

REG = "tests/fuzz-regressions"
SEP = b"\n--8<--\n"  # FUZZ_SEP in fuzz/fuzz.h


def put(target, name, data):
    os.makedirs(f"{REG}/{target}", exist_ok=True)
    assert len(data) <= 64 * 1024, name
    with open(f"{REG}/{target}/{name}", "wb") as f:
        f.write(data)


def floats(n, seed=1):
    """n deterministic small floats."""
    return [((i * 37 + seed * 11) % 17 - 8) / 8.0 for i in range(n)]


# ---- llama2.c ---------------------------------------------------------------

PIECES = [b"<unk>", b"\n<s>\n", b"\n</s>\n", b"<0x0A>", b" a", b"b", b" ab", b"c"]


def llama2c_tokenizer(pieces=PIECES):
    out = struct.pack("<i", max(len(p) for p in pieces))
    for i, p in enumerate(pieces):
        out += struct.pack("<fi", -float(i), len(p)) + p
    return out


def llama2c_checkpoint(dim=4, ffn=6, layers=2, heads=2, kv=1, vocab=8, seq=2, tied=True):
    hd = dim // heads
    sizes = [vocab * dim, layers * dim, layers * dim * dim, layers * kv * hd * dim, layers * kv * hd * dim,
             layers * dim * dim, layers * dim, layers * ffn * dim, layers * dim * ffn, layers * ffn * dim,
             dim, seq * hd // 2, seq * hd // 2]
    if not tied:
        sizes.append(vocab * dim)
    n = sum(sizes)
    header = struct.pack("<7i", dim, ffn, layers, heads, kv, vocab if tied else -vocab, seq)
    return header + struct.pack(f"<{n}f", *floats(n))


def llama2c():
    tok = llama2c_tokenizer()
    put("llama2c", "tiny-tied", llama2c_checkpoint() + SEP + tok)
    put("llama2c", "tiny-untied", llama2c_checkpoint(tied=False) + SEP + tok)
    put("llama2c", "tiny-mha", llama2c_checkpoint(heads=2, kv=2, layers=1) + SEP + tok)
    put("llama2c_tokenizer", "tiny", struct.pack("<H", len(PIECES) - 1) + tok)


# ---- command-line specs -------------------------------------------------------

def spec():
    for i, s in enumerate(["3:117", "0:0", "0-4", "7", "-3", "-5--1", "1000", "2-1", "1:", ":1", "0x10",
                           "4:-1", "99999999999999999999", "1.5", "nan", "1e308", " 3", "3-"]):
        put("spec", f"s{i:02d}", s.encode())


if __name__ == "__main__":
    llama2c()
    spec()
