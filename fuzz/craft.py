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


# ---- Hugging Face directories ----------------------------------------------------

import json

HF_FILES = ["config.json", "model.safetensors", "tokenizer.json", "model.safetensors.index.json",
            "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "tokenizer_config.json"]


def hf_config(dim=4, ffn=6, layers=2, heads=2, kv=1, vocab=8, tied=True, **extra):
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": dim,
         "intermediate_size": ffn, "num_hidden_layers": layers, "num_attention_heads": heads,
         "num_key_value_heads": kv, "vocab_size": vocab, "max_position_embeddings": 64,
         "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": tied, "torch_dtype": "float32"}
    c.update(extra)
    return json.dumps(c, indent=1).encode()


def hf_tensors(dim=4, ffn=6, layers=2, heads=2, kv=1, vocab=8, tied=True):
    hd = dim // heads
    t = [("model.embed_tokens.weight", (vocab, dim)), ("model.norm.weight", (dim,))]
    if not tied:
        t.append(("lm_head.weight", (vocab, dim)))
    for l in range(layers):
        p = f"model.layers.{l}."
        t += [(p + "input_layernorm.weight", (dim,)), (p + "self_attn.q_proj.weight", (heads * hd, dim)),
              (p + "self_attn.k_proj.weight", (kv * hd, dim)), (p + "self_attn.v_proj.weight", (kv * hd, dim)),
              (p + "self_attn.o_proj.weight", (dim, heads * hd)), (p + "post_attention_layernorm.weight", (dim,)),
              (p + "mlp.gate_proj.weight", (ffn, dim)), (p + "mlp.up_proj.weight", (ffn, dim)),
              (p + "mlp.down_proj.weight", (dim, ffn))]
    return sorted(t)


def floats_of(shape):
    n = 1
    for d in shape:
        n *= d
    return floats(n)


def safetensors(tensors, dtype="F32"):
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for i, (name, shape) in enumerate(tensors):
        n = 1
        for d in shape:
            n *= d
        vals = floats(n, i)
        blob = struct.pack(f"<{n}f", *vals)
        if dtype == "BF16":
            blob = b"".join(blob[k + 2:k + 4] for k in range(0, len(blob), 4))  # truncation is fine here
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def hf_tokenizer_spm():
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "\u2581a": 4, "b": 5, "\u2581ab": 6, "c": 7}
    return json.dumps({
        "version": "1.0",
        "added_tokens": [{"id": i, "content": c, "special": True, "normalized": False}
                         for i, c in enumerate(["<unk>", "<s>", "</s>"])],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                           {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                                    {"Sequence": {"id": "A", "type_id": 0}}]},
        "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
                  "vocab": vocab, "merges": ["\u2581a b"]}}, ensure_ascii=False).encode()


def hf_tokenizer_bytelevel():
    vocab = {"a": 0, "b": 1, "\u0120": 2, "\u0120a": 3, "\u010a": 4, "<|begin_of_text|>": 5, "<|eot_id|>": 6, "ab": 7}
    return json.dumps({
        "version": "1.0",
        "added_tokens": [{"id": 5, "content": "<|begin_of_text|>", "special": True},
                         {"id": 6, "content": "<|eot_id|>", "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|\\p{L}+|\\s+"}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel"},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "ignore_merges": True, "vocab": vocab, "merges": [["\u0120", "a"], ["a", "b"]]}},
        ensure_ascii=False).encode()


def hf_dir(files):
    """Joins the named files in HF_FILES order; absent ones are empty parts."""
    last = max(HF_FILES.index(name) for name in files)
    return SEP.join(files.get(name, b"") for name in HF_FILES[:last + 1])


def hf_all():
    tok = hf_tokenizer_spm()
    put("hf", "tiny-f32", hf_dir({"config.json": hf_config(), "model.safetensors": safetensors(hf_tensors()),
                                  "tokenizer.json": tok}))
    put("hf", "tiny-bf16-untied", hf_dir({"config.json": hf_config(tied=False, torch_dtype="bfloat16"),
                                          "model.safetensors": safetensors(hf_tensors(tied=False), "BF16"),
                                          "tokenizer.json": tok}))
    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16}
    put("hf", "tiny-llama3-bytelevel", hf_dir({"config.json": hf_config(rope_scaling=rope, rope_theta=500000.0,
                                                                         bos_token_id=5, eos_token_id=6),
                                               "model.safetensors": safetensors(hf_tensors()),
                                               "tokenizer.json": hf_tokenizer_bytelevel(),
                                               "tokenizer_config.json": json.dumps({
                                                   "add_bos_token": True, "bos_token": "<|begin_of_text|>",
                                                   "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"
                                               }).encode()}))
    # Sharded: the embedding and norm in shard 1, the layers in shard 2.
    t = hf_tensors()
    one = [x for x in t if not x[0].startswith("model.layers.")]
    two = [x for x in t if x[0].startswith("model.layers.")]
    index = {"metadata": {"total_size": 4 * sum(len(floats_of(shape)) for _, shape in t)}, "weight_map": {}}
    for name, _ in one:
        index["weight_map"][name] = HF_FILES[4]
    for name, _ in two:
        index["weight_map"][name] = HF_FILES[5]
    put("hf", "tiny-sharded", hf_dir({"config.json": hf_config(), "tokenizer.json": tok,
                                      "model.safetensors.index.json": json.dumps(index, indent=2).encode(),
                                      HF_FILES[4]: safetensors(one), HF_FILES[5]: safetensors(two)}))


# ---- command-line specs -------------------------------------------------------

def spec():
    for i, s in enumerate(["3:117", "0:0", "0-4", "7", "-3", "-5--1", "1000", "2-1", "1:", ":1", "0x10",
                           "4:-1", "99999999999999999999", "1.5", "nan", "1e308", " 3", "3-"]):
        put("spec", f"s{i:02d}", s.encode())
    for i, s in enumerate(["2:117=10", "0:1,2,3=-2.5", "4:171=1e38", "1:5=0,1,2,4,8", "0:0=nan", "5:0=1",
                           "0:172=1", "0:-1=1", "0:1=", ":1=2", "0:1,,2=3", "0:1=1e39", "a:1=1", "0:1=2=3",
                           "up", "act", "0:" + ",".join(str(n) for n in range(100)) + "=1"]):
        put("clamp", f"c{i:02d}", s.encode())


def chat():
    msgs = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <|eot_id|> there"}],
            [{"role": "user", "content": "caf\u00e9 \ud83e\udd99\n"}], [], [{"role": "user"}], {"role": "user"},
            [{"role": 3, "content": "x"}], [{"role": "assistant", "content": ""}, {"role": "tool", "content": "t"}]]
    for i, m in enumerate(msgs):
        put("chat", f"m{i}", json.dumps(m).encode())
    put("chat", "bad-json", b'[{"role": "user", "content": "unterminated')
    put("chat", "nul-in-content", b'[{"role": "user", "content": "a\\u0000b"}]')


def tokenize():
    """A flags byte (bit 0 BOS, bit 1 special tokens, bits 2-7 which vocabulary), then the text."""
    texts = [b"Once upon a time", b" leading space", b"  two\n\nlines\t", b"<s>hello</s>", "caf\u00e9 \U0001f999".encode(),
             b"\xff\xfe invalid \xc3", b"", b"<|begin_of_text|>Hi<|eot_id|>", b"a" * 300]
    for i, text in enumerate(texts):
        for flags in (0, 3, 4, 7, 8, 13):
            put("tokenize", f"t{i}-{flags:02x}", bytes([flags]) + text)


if __name__ == "__main__":
    llama2c()
    gguf_all()
    hf_all()
    spec()
    tokenize()
    chat()
