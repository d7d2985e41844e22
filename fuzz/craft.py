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


# ---- GGUF --------------------------------------------------------------------

GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY = 4, 5, 6, 7, 8, 9
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8


def gguf_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gguf_value(kind, v):
    if kind == GGUF_STRING:
        return gguf_str(v)
    if kind == GGUF_ARRAY:
        item, items = v
        return struct.pack("<IQ", item, len(items)) + b"".join(gguf_value(item, x) for x in items)
    return struct.pack({GGUF_U32: "<I", GGUF_I32: "<i", GGUF_F32: "<f", GGUF_BOOL: "<?"}[kind], v)


def q8_0(values):
    """ggml Q8_0: per 32 values an f16 scale and 32 int8."""
    out = b""
    for i in range(0, len(values), 32):
        block = values[i:i + 32]
        amax = max(abs(x) for x in block)
        d = amax / 127 if amax else 0.0
        out += struct.pack("<e", d) + bytes((round(x / d) if d else 0) & 0xFF for x in block)
    return out


def gguf(dim=32, ffn=32, layers=1, heads=2, kv=1, quant=None, tied=True, with_tensors=True, alignment=None):
    pieces = ["<unk>", "<s>", "</s>", "<0x0A>", "\u2581a", "b", "\u2581ab", "c"]
    vocab = len(pieces)
    kvs = [("general.architecture", GGUF_STRING, "llama"),
           ("llama.block_count", GGUF_U32, layers),
           ("llama.context_length", GGUF_U32, 64),
           ("llama.embedding_length", GGUF_U32, dim),
           ("llama.feed_forward_length", GGUF_U32, ffn),
           ("llama.attention.head_count", GGUF_U32, heads),
           ("llama.attention.head_count_kv", GGUF_U32, kv),
           ("llama.attention.layer_norm_rms_epsilon", GGUF_F32, 1e-5),
           ("llama.rope.freq_base", GGUF_F32, 10000.0),
           ("tokenizer.ggml.model", GGUF_STRING, "llama"),
           ("tokenizer.ggml.tokens", GGUF_ARRAY, (GGUF_STRING, pieces)),
           ("tokenizer.ggml.scores", GGUF_ARRAY, (GGUF_F32, [-float(i) for i in range(vocab)])),
           ("tokenizer.ggml.token_type", GGUF_ARRAY, (GGUF_I32, [2, 3, 3, 6, 1, 1, 1, 1])),
           ("tokenizer.ggml.bos_token_id", GGUF_U32, 1),
           ("tokenizer.ggml.eos_token_id", GGUF_U32, 2),
           ("tokenizer.ggml.add_bos_token", GGUF_BOOL, True)]
    if alignment:
        kvs.append(("general.alignment", GGUF_U32, alignment))
    align = alignment or 32
    hd = dim // heads
    shapes = [("token_embd.weight", (vocab, dim)), ("output_norm.weight", (dim,))]
    if not tied:
        shapes.append(("output.weight", (vocab, dim)))
    for l in range(layers):
        shapes += [(f"blk.{l}.attn_norm.weight", (dim,)), (f"blk.{l}.attn_q.weight", (heads * hd, dim)),
                   (f"blk.{l}.attn_k.weight", (kv * hd, dim)), (f"blk.{l}.attn_v.weight", (kv * hd, dim)),
                   (f"blk.{l}.attn_output.weight", (dim, heads * hd)), (f"blk.{l}.ffn_norm.weight", (dim,)),
                   (f"blk.{l}.ffn_gate.weight", (ffn, dim)), (f"blk.{l}.ffn_up.weight", (ffn, dim)),
                   (f"blk.{l}.ffn_down.weight", (dim, ffn))]
    if not with_tensors:
        shapes = []
    infos, data = b"", b""
    for i, (name, shape) in enumerate(shapes):
        n = 1
        for d in shape:
            n *= d
        vals = floats(n, i)
        if quant == GGML_Q8_0 and len(shape) == 2:
            kind, blob = GGML_Q8_0, q8_0(vals)
        elif quant == GGML_F16 and len(shape) == 2:
            kind, blob = GGML_F16, struct.pack(f"<{n}e", *vals)
        else:
            kind, blob = GGML_F32, struct.pack(f"<{n}f", *vals)
        data += b"\0" * (-len(data) % align)
        ne = list(reversed(shape))  # GGUF lists the innermost dimension first
        infos += gguf_str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
        infos += struct.pack("<IQ", kind, len(data))
        data += blob
    head = b"GGUF" + struct.pack("<IQQ", 3, len(shapes), len(kvs))
    head += b"".join(gguf_str(k) + struct.pack("<I", t) + gguf_value(t, v) for k, t, v in kvs) + infos
    head += b"\0" * (-len(head) % align)
    return head + data


def gguf_all():
    put("gguf", "tiny-f32", gguf())
    put("gguf", "tiny-untied-f16", gguf(quant=GGML_F16, tied=False))
    put("gguf", "tiny-q8_0-2layers", gguf(quant=GGML_Q8_0, layers=2, alignment=64))
    put("gguf", "tiny-vocab-only", gguf(with_tensors=False))


# ---- command-line specs -------------------------------------------------------

def spec():
    for i, s in enumerate(["3:117", "0:0", "0-4", "7", "-3", "-5--1", "1000", "2-1", "1:", ":1", "0x10",
                           "4:-1", "99999999999999999999", "1.5", "nan", "1e308", " 3", "3-"]):
        put("spec", f"s{i:02d}", s.encode())


if __name__ == "__main__":
    llama2c()
    gguf_all()
    spec()
