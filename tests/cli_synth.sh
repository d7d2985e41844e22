#!/usr/bin/env bash
# tests/cli_synth.sh — `neuromap synth`: options, atomic writes, and the files
# themselves, read back by an independent pure-Python reader (safetensors and
# GGUF parsed from the byte layout, planted rows and their top-1 token
# recomputed from scratch), then by neuromap's own loaders via `info`.
source "$(dirname "$0")/lib.sh"

# ---- the independent reader -------------------------------------------------
cat >"$TMP/check.py" <<'EOF'
import json, math, os, struct, sys

def floats(raw, dtype):
    if dtype in ("F32", 0):
        return list(struct.unpack("<%df" % (len(raw) // 4), raw))
    if dtype in ("F16", 1):
        return list(struct.unpack("<%de" % (len(raw) // 2), raw))
    if dtype in ("BF16", 30):
        hs = struct.unpack("<%dH" % (len(raw) // 2), raw)
        return list(struct.unpack("<%df" % len(hs), struct.pack("<%dI" % len(hs), *[h << 16 for h in hs])))
    if dtype == 8:  # Q8_0: f16 scale + 32 int8
        out = []
        for b in range(0, len(raw), 34):
            d = struct.unpack("<e", raw[b:b + 2])[0]
            out += [d * q for q in struct.unpack("<32b", raw[b + 2:b + 34])]
        return out
    raise ValueError("dtype %r" % (dtype,))

def rows(vals, cols):
    return [vals[i:i + cols] for i in range(0, len(vals), cols)]

def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    assert n % 8 == 0, "header length %d not a multiple of 8" % n
    text = data[8:8 + n].decode()
    assert text.startswith('{"__metadata__":{"format":"pt"},'), text[:60]
    assert text.rstrip(" ") != text or text.endswith("}"), "padding"
    head = json.loads(text)
    del head["__metadata__"]
    names = list(head)
    assert names == sorted(names), "tensors not sorted by name"
    end = 0
    out = {}
    for k in names:
        a, b = head[k]["data_offsets"]
        assert a == end, "%s starts at %d, previous ended at %d" % (k, a, end)
        end = b
        out[k] = (head[k]["dtype"], head[k]["shape"], floats(data[8 + n + a:8 + n + b], head[k]["dtype"]))
    assert 8 + n + end == len(data), "data area does not end the file"
    return out

def read_gguf(path):
    data = open(path, "rb").read()
    pos = [0]
    def take(fmt):
        v = struct.unpack_from("<" + fmt, data, pos[0]); pos[0] += struct.calcsize("<" + fmt); return v[0]
    def string():
        n = take("Q"); s = data[pos[0]:pos[0] + n].decode(); pos[0] += n; return s
    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    def value(t):
        if t == 8: return string()
        if t == 9:
            et, n = take("I"), take("Q"); return [value(et) for _ in range(n)]
        return take(scalar[t])
    assert data[:4] == b"GGUF" and take("4s") and take("I") == 3
    n_t, n_kv = take("Q"), take("Q")
    kv = {}
    for _ in range(n_kv):
        k = string(); kv[k] = value(take("I"))
    infos = []
    for _ in range(n_t):
        name = string(); nd = take("I"); ne = [take("Q") for _ in range(nd)]
        infos.append((name, ne, take("I"), take("Q")))
    align = kv.get("general.alignment", 32)
    start = (pos[0] + align - 1) // align * align
    out = {}
    for name, ne, t, off in infos:
        assert off % align == 0, name
        count = math.prod(ne)
        nbytes = count * 4 if t == 0 else count * 2 if t in (1, 30) else count // 32 * 34
        out[name] = (t, list(reversed(ne)), floats(data[start + off:start + off + nbytes], t))
    return kv, out

def decode_top1(head, norm, w, eps):
    r = math.sqrt(sum(v * v for v in w) / len(w) + eps)
    x = [g * v / r for g, v in zip(norm, w)]
    logits = [sum(a * b for a, b in zip(row, x)) for row in head]
    return max(range(len(logits)), key=logits.__getitem__)

def check_hf(d, plants):
    matrices = os.environ.get("MATRICES", "up,gate").split(",")
    cfg = json.load(open(d + "/config.json"))
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["model_type"] == "llama"
    json.load(open(d + "/tokenizer.json"))
    t = read_safetensors(d + "/model.safetensors")
    dim, ffn, voc = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = cfg["head_dim"]
    assert hd * cfg["num_attention_heads"] == dim
    assert t["model.embed_tokens.weight"][1] == [voc, dim]
    assert ("lm_head.weight" in t) != cfg["tie_word_embeddings"]
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        assert t[p + "mlp.up_proj.weight"][1] == [ffn, dim] and t[p + "mlp.down_proj.weight"][1] == [dim, ffn]
        assert t[p + "self_attn.k_proj.weight"][1] == [cfg["num_key_value_heads"] * hd, dim]
    want = {"float32": "F32", "bfloat16": "BF16"}[cfg["torch_dtype"]]
    assert all(v[0] == want for v in t.values()), "dtype"
    head = rows(t["lm_head.weight" if "lm_head.weight" in t else "model.embed_tokens.weight"][2], dim)
    norm = t["model.norm.weight"][2]
    vals = t["model.layers.0.mlp.down_proj.weight"][2]
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
    assert abs(std - 0.02) < 0.002 and abs(mean) < 0.001, "down_proj std %g mean %g" % (std, mean)
    for spec in plants:
        (l, n), tok = map(int, spec.split("=")[0].split(":")), int(spec.split("=")[1])
        for m in ("up", "gate"):
            w = rows(t["model.layers.%d.mlp.%s_proj.weight" % (l, m)][2], dim)[n]
            h = head[tok]
            rms = math.sqrt(sum(v * v for v in h) / dim)
            tol = 1e-6 if want == "F32" else 2 ** -8
            planted = all(abs(a - b / rms) <= tol * (abs(b / rms) + 1e-3) for a, b in zip(w, h))
            assert planted == (m in matrices), "%s row %s: planted %s" % (m, spec, planted)
            if not planted: continue
            top = decode_top1(head, norm, w, cfg["rms_norm_eps"])
            assert top == tok, "%s %s decodes to %d" % (m, spec, top)

def check_same(d, gguf_path, tol):
    cfg = json.load(open(d + "/config.json"))
    t = read_safetensors(d + "/model.safetensors")
    kv, g = read_gguf(gguf_path)
    assert kv["general.architecture"] == "llama" and kv["llama.block_count"] == cfg["num_hidden_layers"]
    assert kv["llama.embedding_length"] == cfg["hidden_size"] and kv["llama.feed_forward_length"] == cfg["intermediate_size"]
    assert len(kv["tokenizer.ggml.tokens"]) == cfg["vocab_size"] == len(kv["tokenizer.ggml.token_type"])
    assert kv["tokenizer.ggml.model"] == "gpt2" and kv["tokenizer.ggml.pre"] == "llama-bpe"
    hd = cfg["head_dim"]
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    roles = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for l in range(cfg["num_hidden_layers"]):
        for a, b in roles.items():
            names["model.layers.%d.%s.weight" % (l, a)] = "blk.%d.%s.weight" % (l, b)
    assert set(g) == {names[k] for k in t}, sorted(set(g) ^ {names[k] for k in t})
    for k, (dt, shape, vals) in t.items():
        gt, gshape, gvals = g[names[k]]
        assert gshape == shape, (k, gshape, shape)
        if k.endswith("q_proj.weight") or k.endswith("k_proj.weight"):  # undo HF's rotate-half permutation
            cols, half, r = shape[1], hd // 2, rows(vals, shape[1])
            perm = [h + 2 * (i % half) + (i % hd) // half for h in range(0, len(r), hd) for i in range(hd)]
            meta = [None] * len(r)
            for hf_row, m in enumerate(perm): meta[m] = r[hf_row]
            vals = [v for row in meta for v in row]
        if gt == 8:  # Q8_0: within half a step (max|x|/127 per block of 32), plus the f16 scale's rounding
            bound = [max(abs(v) for v in vals[i - i % 32:i - i % 32 + 32]) / 127 * 0.57 for i in range(len(vals))]
        else:
            bound = [tol * max(abs(a), 0.02) for a in vals]
        bad = [i for i, (a, b) in enumerate(zip(vals, gvals)) if abs(a - b) > bound[i]]
        assert not bad, "%s differs at %d: %g vs %g" % (k, bad[0], vals[bad[0]], gvals[bad[0]])

mode = sys.argv[1]
if mode == "hf": check_hf(sys.argv[2], sys.argv[3:])
elif mode == "same": check_same(sys.argv[2], sys.argv[3], float(sys.argv[4]))
print("ok")
EOF
check() { expect_out '^ok$' python3 "$TMP/check.py" "$@"; }

# ---- usage and bad input ----------------------------------------------------
expect_out '^usage: neuromap synth' "$NM" synth --help
expect_exit 2 'unknown option' "$NM" synth "$TMP/x" --bogus
expect_exit 2 'expected one OUT' "$NM" synth
expect_exit 2 'dtype must be' "$NM" synth "$TMP/x" --dtype f64
expect_exit 2 'q8_0 is for GGUF output only' "$NM" synth "$TMP/x" --dtype q8_0
expect_exit 2 'multiple of --heads' "$NM" synth "$TMP/x" --hidden 66
expect_exit 2 'too small' "$NM" synth "$TMP/x" --vocab 100
expect_exit 2 'unknown --preset' "$NM" synth "$TMP/x" --preset llama-9
expect_exit 2 '2 layers of 192 neurons' "$NM" synth "$TMP/x" --plant 2:0=5
expect_exit 2 'not a token id below 512' "$NM" synth "$TMP/x" --plant 0:0=zzzqqq
expect_exit 2 'planted twice' "$NM" synth "$TMP/x" --plant 0:1=5 --plant 0:1=6
expect_exit 2 'multiples of 32' "$NM" synth "$TMP/x.gguf" --dtype q8_0 --hidden 48
[ ! -e "$TMP/x" ] && [ ! -e "$TMP/x.gguf" ] && ok || fail "a refused synth left a file behind"

# ---- HF, F32: structure, planted rows, top-1 ---------------------------------
PLANT=(--plant 0:3=" dog" --plant 1:17=Ġcat --plant 1:100=300)
expect_exit 0 "planted 0:3 = token [0-9]+ ' dog'" "$NM" synth "$TMP/hf" "${PLANT[@]}" --seed 7
DOG=$(sed -nE "s/.*planted 0:3 = token ([0-9]+).*/\1/p" "$TMP/err")
CAT=$(sed -nE "s/.*planted 1:17 = token ([0-9]+).*/\1/p" "$TMP/err")
check hf "$TMP/hf" "0:3=$DOG" "1:17=$CAT" "1:100=300"

# Deterministic: the same seed gives the same bytes, another seed others.
expect_exit 0 '' "$NM" synth "$TMP/hf2" "${PLANT[@]}" --seed 7
cmp -s "$TMP/hf/model.safetensors" "$TMP/hf2/model.safetensors" && ok || fail "same seed, different weights"
expect_exit 0 '' "$NM" synth "$TMP/hf3" "${PLANT[@]}" --seed 8
cmp -s "$TMP/hf/model.safetensors" "$TMP/hf3/model.safetensors" && fail "seed ignored" || ok

# Atomic and careful: no overwrite without --force, no leftovers, only model dirs replaced.
expect_exit 2 'already exists \(use --force' "$NM" synth "$TMP/hf" --seed 8
cmp -s "$TMP/hf/model.safetensors" "$TMP/hf2/model.safetensors" && ok || fail "refused synth changed OUT"
expect_exit 0 '' "$NM" synth "$TMP/hf" --seed 8 "${PLANT[@]}" --force
cmp -s "$TMP/hf/model.safetensors" "$TMP/hf3/model.safetensors" && ok || fail "--force did not replace OUT"
ls "$TMP" | grep -Eq '\.(tmp|old)-' && fail "temporary files left: $(ls "$TMP")" || ok
# Interrupted mid-write: the temporary output is removed, OUT never appears.
"$NM" synth "$TMP/big" --preset llama-3.2-1b --layers 1 --dtype bf16 2>/dev/null &
pid=$!
for _ in $(seq 200); do compgen -G "$TMP/big.tmp-*/model.safetensors" >/dev/null && break; sleep 0.05; done
kill -TERM $pid; wait $pid; rc=$?
expect_eq "$rc" 143 "exit status of a synth killed with SIGTERM"
compgen -G "$TMP/big*" >/dev/null && fail "interrupted synth left $(ls -d "$TMP"/big*)" || ok
mkdir "$TMP/precious" && touch "$TMP/precious/notes.txt"
expect_exit 2 'without config.json; not replacing' "$NM" synth "$TMP/precious" --force
[ -e "$TMP/precious/notes.txt" ] && ok || fail "--force removed a non-model directory"

# ---- HF BF16, tied, up only --------------------------------------------------
expect_exit 0 '' "$NM" synth "$TMP/bf16" --dtype bf16 --tied --plant 0:5="$DOG" --plant-matrix up --layers 1
MATRICES=up check hf "$TMP/bf16" "0:5=$DOG"

# ---- GGUF: the same model as the HF F32 one, in every dtype ----------------
expect_exit 0 '' "$NM" synth "$TMP/same" "${PLANT[@]}" --seed 7 --untied
expect_exit 0 '' "$NM" synth "$TMP/m-f32.gguf" "${PLANT[@]}" --seed 7
check same "$TMP/same" "$TMP/m-f32.gguf" 0
expect_exit 0 '' "$NM" synth "$TMP/m-f16.gguf" "${PLANT[@]}" --seed 7 --dtype f16
check same "$TMP/same" "$TMP/m-f16.gguf" 0.001
expect_exit 0 '' "$NM" synth "$TMP/m-bf16.gguf" "${PLANT[@]}" --seed 7 --dtype bf16
check same "$TMP/same" "$TMP/m-bf16.gguf" 0.0079
expect_exit 0 '' "$NM" synth "$TMP/plain" --seed 7 --untied
expect_exit 0 '' "$NM" synth "$TMP/m-q8.gguf" --seed 7 --dtype q8_0
check same "$TMP/plain" "$TMP/m-q8.gguf" 0
expect_exit 0 '' "$NM" synth "$TMP/m-f32.gguf" --seed 9 --force
ls "$TMP" | grep -Eq '\.(tmp|old)-' && fail "temporary files left: $(ls "$TMP")" || ok

# ---- neuromap's own loaders and the neuron map read it back ------------------
expect_out '"hidden_size":[[:space:]]+64,' "$NM" info "$TMP/hf" --json
expect_out '"tie_word_embeddings":[[:space:]]+false' "$NM" info "$TMP/hf" --json
expect_out 'F32 x21' "$NM" info "$TMP/hf"
expect_out 'LM head +tied to the token embedding' "$NM" info "$TMP/bf16"
expect_out 'BF16 x11' "$NM" info "$TMP/bf16"
expect_out 'F32 x5, Q8_0 x16' "$NM" info "$TMP/m-q8.gguf"
expect_out 'vocabulary +512 tokens, byte-level-bpe, bos [0-9]+, eos [0-9]+' "$NM" info "$TMP/m-f16.gguf"
# Every planted neuron's top-1 token is the planted one, in both matrices and both formats.
for model in "$TMP/same" "$TMP/m-bf16.gguf"; do
    expect_exit 0 '' "$NM" map "$model" --matrix all --top-k 1 --bottom-k 0 --format tsv
    got=$(awk -F'\t' '$1!="down" && (($2==0 && $3==3) || ($2==1 && ($3==17 || $3==100))) {print $1, $2":"$3, $5}' "$TMP/out" | sort | tr '\n' ' ')
    expect_eq "$got" "gate 0:3 $DOG gate 1:100 300 gate 1:17 $CAT up 0:3 $DOG up 1:100 300 up 1:17 $CAT " "planted top-1 in $model"
    expect_out "^up +0 +3 .* 1 +\" dog\"" "$NM" find "$model" " dog" --limit 1
done

finish
