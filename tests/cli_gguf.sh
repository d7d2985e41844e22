#!/usr/bin/env bash
# cli_gguf.sh — `neuromap info` on every GGUF fixture, and corrupt GGUF files
# made here from stories260K.gguf: each must give exit 2 and one line naming
# the file and the problem (never a crash; this also runs under ASan).
source "$(dirname "$0")/lib.sh"
G=$M/stories260K/stories260K.gguf
EDIT=(python3 "$(dirname "$0")/gguf_edit.py")

# ---- every fixture opens; JSON has the issue's keys with the right values ----
json_check() { # FILE PYTHON-EXPR-ON-o
    "$NM" info --json "$1" >"$TMP/j" 2>"$TMP/err" || { fail "info --json $1: $(head -c 300 "$TMP/err")"; return; }
    if python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$TMP/j" "$2"; then ok
    else fail "info --json $1: not ($2): $(tr -d '\n\t' <"$TMP/j" | head -c 400)"; fi
}
KEYS='all(k in o for k in ["format","num_hidden_layers","hidden_size","intermediate_size","num_attention_heads","num_key_value_heads","vocab_size","tie_word_embeddings"]) and o["format"]=="gguf" and o["has_weights"]'
for f in "$G" "$M"/quant/*.gguf "$SHARED"/tokenizers/vectors/*.gguf; do
    expect_out '^format +gguf$' "$NM" info "$f"
    case $f in
    *dequant-f32.gguf) json_check "$f" 'o["format"]=="gguf" and not o["has_weights"] and o["n_tensors"]==21+27*("stories" in o["path"]) and list(o["tensor_dtypes"])==["F32"]' ;;
    */vectors/*) json_check "$f" 'o["format"]=="gguf" and not o["has_weights"] and o["n_tensors"]==0 and o["vocab_size"] in (32000,128256)' ;;
    *synth256*) json_check "$f" "$KEYS"' and (o["num_hidden_layers"],o["hidden_size"],o["intermediate_size"],o["num_attention_heads"],o["num_key_value_heads"],o["vocab_size"],o["tie_word_embeddings"])==(2,256,768,4,2,512,False)' ;;
    *) json_check "$f" "$KEYS"' and (o["num_hidden_layers"],o["hidden_size"],o["intermediate_size"],o["num_attention_heads"],o["num_key_value_heads"],o["vocab_size"],o["head_dim"])==(5,64,172,8,4,512,8)' ;;
    esac
done
expect_out 'Q5_K x13, Q6_K x3' "$NM" info "$M/quant/synth256-q5_k_m.gguf"
expect_out 'F16 x5, Q8_0 x32' "$NM" info "$M/quant/stories260K-q8_0.gguf"
expect_out '^vocabulary +128256 tokens, byte-level-bpe, bos 128000, eos 128009' "$NM" info "$SHARED/tokenizers/vectors/ggml-vocab-llama-bpe.gguf"
expect_out '^weights +none \(vocabulary only\)' "$NM" info "$SHARED/tokenizers/vectors/ggml-vocab-llama-spm.gguf"

# ---- split files ----
"${EDIT[@]}" split "$G" "$TMP/s" 2 || fail "gguf_edit.py split"
expect_out 's-00002-of-00002.gguf' "$NM" info "$TMP/s-00001-of-00002.gguf"
expect_eq "$("$NM" info "$TMP/s-00001-of-00002.gguf" | grep -E '^(layers|tensors|neurons)')" \
    "$("$NM" info "$G" | grep -E '^(layers|tensors|neurons)')" "split and whole file agree"
expect_exit 2 's-00002-of-00002.gguf: is part 2 of a 2-part split; open the first part' "$NM" info "$TMP/s-00002-of-00002.gguf"
cp "$TMP/s-00001-of-00002.gguf" "$TMP/renamed.gguf"
expect_exit 2 'renamed.gguf: split.count is 2, so the name should end in -00001-of-00002.gguf' "$NM" info "$TMP/renamed.gguf"
rm "$TMP/s-00002-of-00002.gguf"
expect_exit 2 's-00002-of-00002.gguf: cannot open' "$NM" info "$TMP/s-00001-of-00002.gguf"

# ---- corrupt files ----
"${EDIT[@]}" offsets "$G" >"$TMP/offsets" || fail "gguf_edit.py offsets"
off() { grep "^$1=" "$TMP/offsets" | cut -d= -f2; }
SIZE=$(stat -c %s "$G")

# bad NAME PATTERN: info on $TMP/NAME.gguf exits 2 with exactly one line naming the file.
bad() {
    expect_exit 2 "^neuromap: $TMP/$1.gguf: .*$2" "$NM" info "$TMP/$1.gguf"
    if [ "$(wc -l <"$TMP/err")" -eq 1 ]; then ok; else fail "$1: stderr is not one line: $(head -c 400 "$TMP/err")"; fi
}
# put NAME OFFSET FMT VALUE: a copy of stories260K.gguf with one value changed.
put() { "${EDIT[@]}" put "$G" "$TMP/$1.gguf" "$2" "$3" "$4" || fail "gguf_edit.py put $*"; }
# cut NAME BYTES: the first BYTES bytes of stories260K.gguf.
cut_at() { head -c "$2" "$G" >"$TMP/$1.gguf"; }

cut_at empty 0;         expect_exit 2 "empty.gguf: " "$NM" info "$TMP/empty.gguf"
cut_at magic 6;         bad magic 'truncated'
cut_at header 20;       bad header 'GGUF header: truncated'
cut_at meta0 100;       bad meta0 'claims 19 metadata keys, more than the 76 bytes after the header can hold'
cut_at meta 5000;       bad meta "metadata key 'tokenizer.ggml.tokens': (truncated|a string .* runs past the end)"
cut_at meta2 "$(off general.architecture)"; bad meta2 "metadata key 'general.architecture': truncated"
cut_at infos $(($(off infos_start) + 20)); bad infos 'tensor info 1 of 48: a string of 17 bytes .* \(truncated or corrupt\)'
cut_at infos2 "$(off tensor1_type)"; bad infos2 'tensor blk.0.attn_q.weight|output_norm.weight: truncated'
cut_at data $((SIZE - 1000)); bad data 'beyond the end of the file'
cut_at data2 $(($(off data_start) + 100)); bad data2 'tensor token_embd.weight: .*beyond the end of the file'

put version 4 I 1;              bad version 'GGUF version 1 is not supported'
put version9 4 I 9;             bad version9 'unsupported GGUF version 9'
put bigendian 4 I 0x03000000;   bad bigendian 'big-endian GGUF is not supported'
put flip_magic 1 B 0xB8;        expect_exit 2 "flip_magic.gguf: " "$NM" info "$TMP/flip_magic.gguf"
put flip_kv_high 23 B 0xFF;     bad flip_kv_high 'claims [0-9]+ metadata keys'
put flip_tensor_high 15 B 0x80; bad flip_tensor_high 'claims [0-9]+ tensors'
put kv_fewer "$(off n_kv)" Q 18;  bad kv_fewer '.'
put kv_more "$(off n_kv)" Q 20;   bad kv_more '.'
put tensors_fewer "$(off n_tensors)" Q 47; bad tensors_fewer '.'
put tensors_more "$(off n_tensors)" Q 49;  bad tensors_more '.'
put n_tensors_huge "$(off n_tensors)" Q $((1 << 40)); bad n_tensors_huge 'claims 1099511627776 tensors, more than'
put n_kv_huge "$(off n_kv)" Q $((1 << 40));           bad n_kv_huge 'claims 1099511627776 metadata keys, more than'
put key_huge "$(off kv_start)" Q $((1 << 60));        bad key_huge 'a string of 1152921504606846976 bytes at offset 24 runs past the end'
put str_huge "$(off general.architecture)" Q $((1 << 60)); bad str_huge "'general.architecture': a string of 1152921504606846976 bytes"
put array_huge $(($(off tokenizer.ggml.tokens) + 4)) Q $((1 << 60)); bad array_huge "'tokenizer.ggml.tokens': an array of 1152921504606846976 string values cannot fit"
put value_type $(($(off general.architecture) - 4)) I 77; bad value_type "'general.architecture': unknown value type 77"
put dims "$(($(off tensor1_type) - 8 - 4))" I 2; bad dims '.'
put dims5 "$(($(off infos_start) + 8 + 17))" I 5; bad dims5 'token_embd.weight: has 5 dimensions'

put off_beyond "$(off tensor0_offset)" Q $((1 << 40)); bad off_beyond 'tensor token_embd.weight: .*beyond the end of the file'
put off_misaligned "$(off tensor1_offset)" Q $(($(off tensor1_offset_value) + 4)); bad off_misaligned 'tensor output_norm.weight: offset 131076 is not a multiple of the alignment 32'
put off_overlap "$(off tensor1_offset)" Q 0;    bad off_overlap 'the data of two tensors overlap'
put type_known "$(off tensor0_type)" I 16;      bad type_known 'tensor token_embd.weight has type IQ2_XXS, which neuromap cannot read'
put type_unknown "$(off tensor0_type)" I 99;    bad type_unknown 'tensor token_embd.weight has unknown ggml type 99'
put type_blocks "$(off tensor0_type)" I 12;     bad type_blocks 'tensor token_embd.weight: rows of 64 values do not fill Q4_K blocks of 256'
put arch_qwen2 $(($(off general.architecture) + 8)) 5s qwen2; bad arch_qwen2 "architecture 'qwen2' is not supported"
put no_embd $(($(off infos_start) + 8)) 1s x;   bad no_embd 'required tensor token_embd.weight is missing'
put dim_wrong "$(off llama.embedding_length)" I 32; bad dim_wrong 'llama.rope.dimension_count = 8: RoPE on part of the 4-wide head'
put ffn_wrong "$(off llama.feed_forward_length)" I 100; bad ffn_wrong 'blk.0.ffn_gate.weight has shape \[172 x 64\], the config implies \[100 x 64\]'
put layers_zero "$(off llama.block_count)" I 0; bad layers_zero 'llama.block_count = 0 is outside'
put eps_type $(($(off llama.attention.layer_norm_rms_epsilon) - 4)) I 4; bad eps_type "rms_norm_eps [0-9.e+]+ is out of range"
put bos_range "$(off tokenizer.ggml.bos_token_id)" I 512; bad bos_range 'tokenizer.ggml.bos_token_id = 512 is outside the 512-token vocabulary'
put tok_model $(($(off tokenizer.ggml.model) + 8)) 5s bert_; bad tok_model "tokenizer.ggml.model 'bert_' is not supported"

finish
