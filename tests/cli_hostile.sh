# cli_hostile.sh — what a user sees for hostile or broken inputs: one line
# "neuromap: <file>: <problem>" and exit 2, never a crash. The cases are built
# here from the fixtures (truncation, corrupted header fields, absurd counts);
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

# ---- a file of another kind entirely -----------------------------------------
expect_exit 2 "config.json: (not a llama2.c checkpoint|too short|truncated)" info "$M/stories260K-hf/config.json" --tokenizer "$TOK"
expect_exit 2 "give the model's directory" info "$M/stories260K-hf/model.safetensors"

finish
