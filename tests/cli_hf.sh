#!/usr/bin/env bash
# cli_hf.sh — `neuromap info` on the Hugging Face fixtures, and corrupt or
# unsupported HF directories (made here from the fixtures) refused with one
# line naming the file and exit 2.
source "$(dirname "$0")/lib.sh"
HF=$M/stories260K-hf
BF=$M/stories260K-hf-bf16-sharded
PY=/usr/bin/python3

# json_is FILE PYTHON-EXPRESSION: the expression over `j` (the parsed file) is true.
json_is() {
    if $PY -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$1" "$2"; then ok
    else fail "$1: not true: $2: $(head -c 300 "$1")"; fi
}

# ---- every fixture ------------------------------------------------------------
for d in "$HF" "$BF" "$M/stories260K-dogs/hf"; do
    expect_out '"format":[[:space:]]*"hf"' "$NM" info "$d" --json
    json_is "$TMP/out" 'j["num_hidden_layers"] == 5 and j["hidden_size"] == 64 and j["intermediate_size"] == 172
        and j["num_attention_heads"] == 8 and j["num_key_value_heads"] == 4 and j["vocab_size"] == 512
        and j["tie_word_embeddings"] is True and j["rope_pairing"] == "rotate-half" and j["n_tensors"] == 47
        and j["bos_token_id"] == 1 and j["eos_token_id"] == 2 and j["tokenizer"] == "sentencepiece-bpe"'
    expect_out 'rotate-half' "$NM" info "$d"
done
expect_out '"BF16":[[:space:]]*47' "$NM" info "$BF" --json
json_is "$TMP/out" 'len(j["files"]) == 2 and j["rope_scaling"] is None'
for d in "$SHARED/tokenizers/llama-3" "$SHARED/tokenizers/llama-3.1"; do
    expect_out '"has_weights":[[:space:]]*false' "$NM" info "$d" --json
    json_is "$TMP/out" 'j["vocab_size"] == 128256 and j["bos_token_id"] == 128000 and j["eos_token_id"] == 128009
        and j["tokenizer"] == "byte-level-bpe"'
done

# ---- helpers to break copies --------------------------------------------------
# fresh NAME [SRC]: a writable copy of a fixture directory in $TMP/NAME.
fresh() { rm -rf "$TMP/$1"; cp -r "${2:-$HF}" "$TMP/$1"; chmod -R u+w "$TMP/$1"; echo "$TMP/$1"; }

# st FILE OP [ARGS]: rewrites a safetensors header (the data stays as is).
cat >"$TMP/st.py" <<'EOF'
import json, struct, sys
path, op, args = sys.argv[1], sys.argv[2], sys.argv[3:]
raw = open(path, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h, data = json.loads(raw[8:8 + n]), raw[8 + n:]
L0 = 'model.layers.0.'
if op == 'set':                       # set TENSOR FIELD JSON
    h[args[0]][args[1]] = json.loads(args[2])
elif op == 'drop':                    # drop TENSOR
    del h[args[0]]
elif op == 'raw':                     # raw TEXT: the header is TEXT
    h = None
text = args[0].encode() if op == 'raw' else json.dumps(h).encode()
text += b' ' * (-len(text) % 8)
open(path, 'wb').write(struct.pack('<Q', len(text)) + text + data)
EOF
st() { $PY "$TMP/st.py" "$@"; }
# cfg DIR PYTHON-STATEMENT: edits DIR/config.json as `c`.
cfg() {
    $PY -c 'import json,sys; p=sys.argv[1]+"/config.json"; c=json.load(open(p)); exec(sys.argv[2]); json.dump(c, open(p, "w"))' "$1" "$2"
}
# tok DIR PYTHON-STATEMENT: edits DIR/tokenizer.json as `t`.
tok() {
    $PY -c 'import json,sys; p=sys.argv[1]+"/tokenizer.json"; t=json.load(open(p)); exec(sys.argv[2]); json.dump(t, open(p, "w"))' "$1" "$2"
}
Q=model.layers.0.self_attn.q_proj.weight
K=model.layers.0.self_attn.k_proj.weight
V=model.layers.0.self_attn.v_proj.weight

# ---- safetensors ----------------------------------------------------------------
size=$(stat -c %s "$HF/model.safetensors")
for cut in 0 5 8 100 4000 4864 4872 500000 $((size - 1)); do
    d=$(fresh trunc)
    head -c "$cut" "$HF/model.safetensors" >"$d/model.safetensors"
    expect_exit 2 'model\.safetensors: ' "$NM" info "$d"
done
d=$(fresh hdrlen); $PY -c 'import sys; f=open(sys.argv[1],"r+b"); f.write((10**12).to_bytes(8,"little"))' "$d/model.safetensors"
expect_exit 2 'model\.safetensors: header length 1000000000000 runs past the end' "$NM" info "$d"
d=$(fresh flip); printf 'X' | dd of="$d/model.safetensors" bs=1 seek=8 conv=notrunc status=none
expect_exit 2 'model\.safetensors: malformed JSON' "$NM" info "$d"
d=$(fresh notobj); st "$d/model.safetensors" raw '[1, 2]'
expect_exit 2 'model\.safetensors: expected a JSON object' "$NM" info "$d"
d=$(fresh beyond); st "$d/model.safetensors" set "$V" data_offsets '[1040000, 1048192]'
expect_exit 2 "model\.safetensors: tensor $V: data_offsets .* outside the data area" "$NM" info "$d"
d=$(fresh backwards); st "$d/model.safetensors" set "$V" data_offsets '[8192, 0]'
expect_exit 2 "model\.safetensors: tensor $V: data_offsets" "$NM" info "$d"
d=$(fresh negative); st "$d/model.safetensors" set "$V" data_offsets '[-8192, 0]'
expect_exit 2 "model\.safetensors: tensor $V: data_offsets must be" "$NM" info "$d"
off=$($PY -c 'import json,struct,sys; r=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",r[:8])[0]; print(json.dumps(json.loads(r[8:8+n])[sys.argv[2]]["data_offsets"]))' "$HF/model.safetensors" "$K")
d=$(fresh overlap); st "$d/model.safetensors" set "$V" data_offsets "$off"
expect_exit 2 'model\.safetensors: tensors .* overlap' "$NM" info "$d"
d=$(fresh dtype); st "$d/model.safetensors" set "$V" dtype '"Q9_X"'
expect_exit 2 "model\.safetensors: tensor $V has unknown dtype 'Q9_X'" "$NM" info "$d"
for q in F8_E4M3 I8 I32; do
    d=$(fresh "q$q"); st "$d/model.safetensors" set "$V" dtype "\"$q\""
    expect_exit 2 "model\.safetensors: tensor $V has dtype $q, which neuromap does not read" "$NM" info "$d"
done
d=$(fresh span); st "$d/model.safetensors" set "$V" shape '[32, 63]'
expect_exit 2 "model\.safetensors: tensor $V: shape needs 8064 bytes of F32 but data_offsets span 8192" "$NM" info "$d"
d=$(fresh huge); st "$d/model.safetensors" set "$V" shape '[1099511627776, 1099511627776]'
expect_exit 2 "model\.safetensors: tensor $V: shape has more values" "$NM" info "$d"
d=$(fresh dims); st "$d/model.safetensors" set "$V" shape '[1, 1, 1, 32, 64]'
expect_exit 2 "model\.safetensors: tensor $V: shape must be a list of at most 4" "$NM" info "$d"
d=$(fresh frac); st "$d/model.safetensors" set "$V" shape '[32.5, 64]'
expect_exit 2 "model\.safetensors: tensor $V: shape entry 0" "$NM" info "$d"
d=$(fresh missing); st "$d/model.safetensors" drop model.layers.3.mlp.up_proj.weight
expect_exit 2 'required tensor model\.layers\.3\.mlp\.up_proj\.weight is missing' "$NM" info "$d"
d=$(fresh transposed); st "$d/model.safetensors" set model.layers.1.mlp.down_proj.weight shape '[172, 64]'
expect_exit 2 'tensor model\.layers\.1\.mlp\.down_proj\.weight has shape \[172 x 64\], the config implies \[64 x 172\]' "$NM" info "$d"
expect_exit 2 'give the model.s directory' "$NM" info "$HF/model.safetensors"

# ---- shards and the index -------------------------------------------------------
d=$(fresh noshard "$BF"); rm "$d/model-00002-of-00002.safetensors"
expect_exit 2 'model-00002-of-00002\.safetensors: cannot open' "$NM" info "$d"
d=$(fresh badmap "$BF")
$PY -c 'import json,sys; p=sys.argv[1]; j=json.load(open(p)); j["weight_map"]["model.norm.weight"]="../model.safetensors"; json.dump(j,open(p,"w"))' "$d/model.safetensors.index.json"
expect_exit 2 'model\.safetensors\.index\.json: weight_map entry model\.norm\.weight must name a shard' "$NM" info "$d"
d=$(fresh wrongshard "$BF")
$PY -c 'import json,sys; p=sys.argv[1]; j=json.load(open(p)); j["weight_map"]["model.norm.weight"]="model-00001-of-00002.safetensors"; json.dump(j,open(p,"w"))' "$d/model.safetensors.index.json"
expect_exit 2 'index\.json: lists tensor model\.norm\.weight in model-00001-of-00002\.safetensors, which does not hold it' "$NM" info "$d"
d=$(fresh noweights); rm "$d/model.safetensors"
expect_exit 2 'has config\.json but no model\.safetensors' "$NM" info "$d"
d=$(fresh dup "$BF")
cp "$d/model-00001-of-00002.safetensors" "$d/model-00003-of-00002.safetensors"
$PY -c 'import json,sys; p=sys.argv[1]; j=json.load(open(p)); j["weight_map"]["extra"]="model-00003-of-00002.safetensors"; json.dump(j,open(p,"w"))' "$d/model.safetensors.index.json"
expect_exit 2 'model-00003-of-00002\.safetensors: tensor .* appears twice' "$NM" info "$d"

# ---- config.json ----------------------------------------------------------------
d=$(fresh cfgjson); head -c 200 "$HF/config.json" >"$d/config.json"
expect_exit 2 'config\.json: malformed JSON' "$NM" info "$d"
d=$(fresh cfgtype); cfg "$d" 'c["hidden_size"] = "64"'
expect_exit 2 'config\.json: hidden_size must be a non-negative integer' "$NM" info "$d"
d=$(fresh cfgmiss); cfg "$d" 'del c["num_hidden_layers"]'
expect_exit 2 'config\.json: num_hidden_layers is missing' "$NM" info "$d"
d=$(fresh ffn); cfg "$d" 'c["intermediate_size"] = 173'
expect_exit 2 'model\.layers\.0\.mlp\.gate_proj\.weight has shape \[172 x 64\], the config implies \[173 x 64\]' "$NM" info "$d"
d=$(fresh layers); cfg "$d" 'c["num_hidden_layers"] = 6'
expect_exit 2 'required tensor model\.layers\.5\.input_layernorm\.weight is missing' "$NM" info "$d"
d=$(fresh vocab); cfg "$d" 'c["vocab_size"] = 500'
expect_exit 2 'model\.embed_tokens\.weight has shape \[512 x 64\], the config implies \[500 x 64\]' "$NM" info "$d"
d=$(fresh untied); cfg "$d" 'c["tie_word_embeddings"] = False'
expect_exit 2 'config\.json: tie_word_embeddings is false but the weights have no lm_head\.weight' "$NM" info "$d"
d=$(fresh deftie); cfg "$d" 'del c["tie_word_embeddings"]'
expect_exit 2 'config\.json: tie_word_embeddings is false' "$NM" info "$d"
d=$(fresh quant); cfg "$d" 'c["quantization_config"] = {"quant_method": "gptq", "bits": 4}'
expect_exit 2 'config\.json: quantised checkpoint \(quantization_config, method gptq\)' "$NM" info "$d"
d=$(fresh qwen); cfg "$d" 'c["model_type"] = "qwen2"; c["architectures"] = ["Qwen2ForCausalLM"]'
expect_exit 2 "config\.json: model_type 'qwen2' is not supported" "$NM" info "$d"
d=$(fresh gemma); cfg "$d" 'del c["model_type"]; c["architectures"] = ["GemmaForCausalLM"]'
expect_exit 2 "config\.json: architecture 'GemmaForCausalLM' is not supported" "$NM" info "$d"
d=$(fresh mistral); cfg "$d" 'c["sliding_window"] = 4096'
expect_exit 2 'config\.json: sliding-window attention is not supported' "$NM" info "$d"
d=$(fresh bias); cfg "$d" 'c["attention_bias"] = True'
expect_exit 2 'config\.json: attention_bias is true' "$NM" info "$d"
d=$(fresh mlpbias); cfg "$d" 'c["mlp_bias"] = True'
expect_exit 2 'config\.json: mlp_bias is true' "$NM" info "$d"
d=$(fresh linear); cfg "$d" 'c["rope_scaling"] = {"rope_type": "linear", "factor": 2.0}'
expect_exit 2 "config\.json: rope_scaling type 'linear' is not supported" "$NM" info "$d"
d=$(fresh heads); cfg "$d" 'del c["head_dim"]; c["num_attention_heads"] = 7'
expect_exit 2 'config\.json: hidden_size 64 is not a multiple of num_attention_heads 7' "$NM" info "$d"
d=$(fresh llama3); cfg "$d" 'c["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}; c["rope_theta"] = 500000.0'
expect_out '"rope_type":[[:space:]]*"llama3"' "$NM" info "$d" --json
json_is "$TMP/out" 'j["rope_scaling"]["factor"] == 8 and j["rope_scaling"]["high_freq_factor"] == 4
    and j["rope_scaling"]["original_max_position_embeddings"] == 8192 and j["rope_theta"] == 500000'
d=$(fresh defaults); cfg "$d" 'del c["num_key_value_heads"], c["head_dim"], c["rope_theta"], c["rms_norm_eps"]'
expect_exit 2 'k_proj\.weight has shape \[32 x 64\], the config implies \[64 x 64\]' "$NM" info "$d"

# ---- tokenizer.json and tokenizer_config.json ------------------------------------
d=$(fresh tokjson); head -c 3000 "$HF/tokenizer.json" >"$d/tokenizer.json"
expect_exit 2 'tokenizer\.json: malformed JSON' "$NM" info "$d"
d=$(fresh notok); rm "$d/tokenizer.json"
expect_exit 2 'tokenizer\.json: missing' "$NM" info "$d"
d=$(fresh unigram); tok "$d" 't["model"]["type"] = "Unigram"'
expect_exit 2 "tokenizer\.json: model type 'Unigram' is not supported" "$NM" info "$d"
d=$(fresh bigid); tok "$d" 't["model"]["vocab"]["he"] = 2**40'
expect_exit 2 'tokenizer\.json: model\.vocab entry "he" has no valid id' "$NM" info "$d"
d=$(fresh twice); tok "$d" 't["model"]["vocab"]["he"] = 261'
expect_exit 2 'tokenizer\.json: id 261 is given to both' "$NM" info "$d"
d=$(fresh merge); tok "$d" 't["model"]["merges"][7] = 12'
expect_exit 2 'tokenizer\.json: merge 7 is neither' "$NM" info "$d"
d=$(fresh bigtok); tok "$d" 't["added_tokens"].append({"id": 600, "content": "<extra>", "special": True})'
expect_exit 2 'tokenizer has 601 tokens but the model only 512' "$NM" info "$d"
d=$(fresh pairs); tok "$d" 't["model"]["merges"] = [m.split(" ") for m in t["model"]["merges"]]'
expect_out '"vocab_size":[[:space:]]*512' "$NM" info "$d" --json
d=$(fresh badbos); $PY -c 'import json,sys; p=sys.argv[1]; j=json.load(open(p)); j["bos_token"]="<nope>"; json.dump(j,open(p,"w"))' "$d/tokenizer_config.json"
expect_exit 2 'tokenizer_config\.json: bos_token "<nope>" is not in the vocabulary' "$NM" info "$d"
d=$(fresh toks); rm "$d/config.json" "$d/model.safetensors"
expect_out '"has_weights":[[:space:]]*false' "$NM" info "$d" --json
json_is "$TMP/out" 'j["vocab_size"] == 512 and j["bos_token_id"] == 1'
mkdir -p "$TMP/empty"
expect_exit 2 'empty: not a Hugging Face model directory' "$NM" info "$TMP/empty"
expect_exit 2 'no such file or directory' "$NM" info "$TMP/nowhere"

finish
