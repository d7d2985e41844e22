# cli_hostile.sh — what a user sees for hostile or broken inputs: one line
# "neuromap: <file>: <problem>" and exit 2, never a crash. The cases are built
# here from the fixtures (truncation, corrupted header fields, absurd counts,
# bad offsets, overlapping tensors; the HF loader's own are in cli_hf.sh);
# docs/RELIABILITY.md tabulates them with the fuzzing results.
source "$(dirname "$0")/lib.sh"

S=$M/stories260K
BIN=$S/stories260K.bin
TOK=$S/tok512.bin

# patch FILE OFFSET BYTES: overwrite bytes (printf escapes) in place.
patch() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# variant NAME: a writable copy of the checkpoint (or of $2) named NAME under $TMP.
variant() { cp "${2:-$BIN}" "$TMP/$1"; chmod u+w "$TMP/$1"; echo "$TMP/$1"; }
info() { "$NM" info "$@"; }

# ---- files that are not there or not files --------------------------------
expect_exit 2 "nope.bin: no such file" info "$TMP/nope.bin" --tokenizer "$TOK"
expect_exit 2 ": not a regular file" info "$BIN" --tokenizer "$TMP"
expect_exit 2 "needs its tokenizer" info "$BIN"
: >"$TMP/empty.bin"
expect_exit 2 "empty.bin: .*too short" info "$TMP/empty.bin" --tokenizer "$TOK"

# ---- llama2.c checkpoint: truncation at several offsets --------------------
for n in 3 27 28 1000 524288 1056536; do
    head -c "$n" "$BIN" >"$TMP/cut$n.bin"
    expect_exit 2 "cut$n.bin: .*(too short|truncated)" info "$TMP/cut$n.bin" --tokenizer "$TOK"
done

# ---- llama2.c header fields: absurd, negative, inconsistent ----------------
f=$(variant vocab-min.bin); patch "$f" 20 '\x00\x00\x00\x80'          # vocab_size = INT32_MIN
expect_exit 2 "vocab-min.bin: not a llama2.c checkpoint" info "$f" --tokenizer "$TOK"
f=$(variant dim-huge.bin); patch "$f" 0 '\x00\x00\x00\x40'            # dim = 2^30
expect_exit 2 "dim-huge.bin: not a llama2.c checkpoint" info "$f" --tokenizer "$TOK"
f=$(variant layers-huge.bin); patch "$f" 8 '\xff\xff\xff\x7f'         # n_layers = INT32_MAX
expect_exit 2 "layers-huge.bin: not a llama2.c checkpoint" info "$f" --tokenizer "$TOK"
f=$(variant layers-more.bin); patch "$f" 8 '\x00\x04\x00\x00'         # 1024 layers: fits the limits, not the file
expect_exit 2 "layers-more.bin: truncated" info "$f" --tokenizer "$TOK"
f=$(variant heads-neg.bin); patch "$f" 12 '\xff\xff\xff\xff'          # n_heads = -1
expect_exit 2 "heads-neg.bin: not a llama2.c checkpoint" info "$f" --tokenizer "$TOK"
f=$(variant kv-more.bin); patch "$f" 16 '\x10\x00\x00\x00'            # 16 KV heads > 8 heads
expect_exit 2 "kv-more.bin: 16 KV heads exceed 8 heads" info "$f" --tokenizer "$TOK"
f=$(variant untied.bin); patch "$f" 20 '\x00\xfe\xff\xff'             # vocab -512: a classifier that is not there
expect_exit 2 "untied.bin: truncated" info "$f" --tokenizer "$TOK"
f=$(variant vocab-more.bin); patch "$f" 20 '\x00\x04\x00\x00'  # vocab 1024
expect_exit 2 "vocab-more.bin: truncated" info "$f" --tokenizer "$TOK"

# ---- llama2.c tokenizer -----------------------------------------------------
for n in 0 4 11 3000 6226; do
    head -c "$n" "$TOK" >"$TMP/tok$n.bin"
    expect_exit 2 "tok$n.bin: (truncated at token|token [0-9]+ has length [0-9]+ beyond the end)" info "$BIN" --tokenizer "$TMP/tok$n.bin"
done
f=$(variant toklen-huge.bin "$TOK"); patch "$f" 8 '\xff\xff\xff\x7f'  # first token's length = INT32_MAX
expect_exit 2 "toklen-huge.bin: token 0 has length 2147483647 beyond the end" info "$BIN" --tokenizer "$f"
f=$(variant toklen-neg.bin "$TOK"); patch "$f" 8 '\xff\xff\xff\xff'   # length -1
expect_exit 2 "toklen-neg.bin: token 0 has length -1" info "$BIN" --tokenizer "$f"

# ---- GGUF: header counts, strings, tensor infos, offsets -------------------
G=$S/stories260K.gguf
T=$(grep -obUa "token_embd.weight" "$G" | head -n 1 | cut -d: -f1)   # tensor info: name, u32 n_dims, u64 ne[2], u32 type, u64 offset
N=$(grep -obUa "output_norm.weight" "$G" | head -n 1 | cut -d: -f1)  # the same for a vector: ne[1]
f=$(variant v1.gguf "$G"); patch "$f" 4 '\x01\x00\x00\x00'
expect_exit 2 "v1.gguf: GGUF header: GGUF version 1 is not supported" info "$f"
f=$(variant tensors.gguf "$G"); patch "$f" 8 '\x00\x00\x00\x00\x00\x01\x00\x00'       # 2^40 tensors
expect_exit 2 "tensors.gguf: GGUF header: claims 1099511627776 tensors, more than" info "$f"
f=$(variant kvs.gguf "$G"); patch "$f" 16 '\x00\x00\x00\x00\x00\x01\x00\x00'          # 2^40 metadata keys
expect_exit 2 "kvs.gguf: GGUF header: claims 1099511627776 metadata keys" info "$f"
f=$(variant keylen.gguf "$G"); patch "$f" 24 '\x00\x00\x00\x00\x00\x00\x00\x10'       # a 2^60-byte key
expect_exit 2 "keylen.gguf: metadata key 1 of [0-9]+: a string of 1152921504606846976 bytes" info "$f"
f=$(variant type.gguf "$G"); patch "$f" $((T + 37)) '\x63\x00\x00\x00'                # ggml type 99
expect_exit 2 "type.gguf: tensor token_embd.weight has unknown ggml type 99" info "$f"
f=$(variant offset.gguf "$G"); patch "$f" $((T + 41)) '\x00\x00\x00\x00\x00\x00\x00\x40'
expect_exit 2 "offset.gguf: tensor token_embd.weight: 131072 bytes of F32 at data offset 4611686018427387904 lie beyond" info "$f"
f=$(variant align.gguf "$G"); patch "$f" $((T + 41)) '\x04\x00\x00\x00\x00\x00\x00\x00'
expect_exit 2 "align.gguf: tensor token_embd.weight: offset 4 is not a multiple of the alignment 32" info "$f"
f=$(variant dims.gguf "$G"); patch "$f" $((T + 21)) '\x00\x00\x00\x00\x00\x00\x00\x01'  # ne[0] = 2^56
expect_exit 2 "dims.gguf: tensor token_embd.weight has an impossible shape" info "$f"
f=$(variant ndims.gguf "$G"); patch "$f" $((T + 17)) '\x09\x00\x00\x00'
expect_exit 2 "ndims.gguf: tensor token_embd.weight: has 9 dimensions" info "$f"
f=$(variant overlap.gguf "$G"); patch "$f" $((N + 34)) '\x00\x00\x00\x00\x00\x00\x00\x00'  # output_norm onto token_embd
expect_exit 2 "overlap.gguf: the data of two tensors overlap" info "$f"
f=$(variant twice.gguf "$G"); patch "$f" "$N" 'token_embd.weight\x00'
expect_exit 2 "twice.gguf: tensor token_embd.weight appears twice" info "$f"
f=$(variant escape.gguf "$G"); patch "$f" "$T" '\x1b[31m'; patch "$f" $((T + 37)) '\x63\x00\x00\x00'
expect_exit 2 "escape.gguf: tensor \?\[31m_embd.weight has unknown ggml type 99" info "$f"  # no raw ESC reaches the terminal
for n in 20 100 5000 1185375; do
    head -c "$n" "$G" >"$TMP/cut$n.gguf"
    expect_exit 2 "cut$n.gguf: .*(truncated|more than the [0-9]+ bytes|beyond the end)" info "$TMP/cut$n.gguf"
done

# ---- a file of another kind entirely -----------------------------------------
expect_exit 2 "config.json: (not a llama2.c checkpoint|too short|truncated)" info "$M/stories260K-hf/config.json" --tokenizer "$TOK"
expect_exit 2 "give the model's directory" info "$M/stories260K-hf/model.safetensors"

finish
