#!/usr/bin/env bash
# cli_tokenize.sh — `neuromap tokenize`: formats, files, BOS, specials, decode, errors.
source "$(dirname "$0")/lib.sh"
S=$M/stories260K
T=(--tokenizer "$S/tok512.bin")

expect_out '^usage: neuromap tokenize' "$NM" tokenize --help
expect_exit 2 'unknown option' "$NM" tokenize "$S/stories260K.bin" --bogus
expect_exit 2 'give TEXT, -f FILE or --messages' "$NM" tokenize "$S/stories260K.bin" "${T[@]}"
expect_exit 2 'format must be' "$NM" tokenize "$S/stories260K.bin" "${T[@]}" --format xml hi
expect_exit 2 'needs its tokenizer' "$NM" tokenize "$S/stories260K.bin" hi
expect_exit 2 'nope.txt: cannot open' "$NM" tokenize "$S/stories260K.bin" "${T[@]}" -f "$TMP/nope.txt"

# ids: BOS first by default (options may follow the positionals).
expect_eq "$("$NM" tokenize "$S/stories260K.bin" "Once upon a time" "${T[@]}" --format ids)" "1 403 407 261 378" "ids"
expect_eq "$("$NM" tokenize "$S/stories260K.bin" "${T[@]}" --no-bos --format ids "Once upon a time")" "403 407 261 378" "--no-bos"
# Table: one row per token with the text it stands for.
expect_out "^ +1 +403 +' Once'$" "$NM" tokenize "$S/stories260K.bin" "${T[@]}" "Once upon a time"
# Special tokens are text unless --special.
expect_eq "$("$NM" tokenize "$S/stories260K.bin" "${T[@]}" --no-bos --format ids "The end.</s>")" \
    "291 344 264 426 504 492 419 505" "</s> as text"
expect_eq "$("$NM" tokenize "$S/stories260K.bin" "${T[@]}" --no-bos --special --format ids "The end.</s>")" \
    "291 344 264 426 2" "</s> with --special"
# -f reads the file byte for byte: the final newline is a token (13 = <0x0A>).
printf 'Once upon a time\n' >"$TMP/p.txt"
expect_eq "$("$NM" tokenize "$S/stories260K.bin" "${T[@]}" -f "$TMP/p.txt" --format ids)" "1 403 407 261 378 13" "-f"
# JSON carries ids and pieces.
expect_out '"ids":\[1,403,407,261,378\],"pieces":\["<s>","▁Once"' \
    "$NM" tokenize "$S/stories260K.bin" "${T[@]}" --format json "Once upon a time"
# Decode: control tokens dropped (kept with --special), the SPM prefix space removed.
expect_eq "$("$NM" tokenize "$S/stories260K.bin" "${T[@]}" --decode "1 403 407 261 378 2")" "Once upon a time" "decode"
expect_eq "$("$NM" tokenize "$S/stories260K.bin" "${T[@]}" --special --decode "1,403,407,261,378,2")" "<s> Once upon a time</s>" "decode --special"
expect_exit 2 "'512' is not a token id" "$NM" tokenize "$S/stories260K.bin" "${T[@]}" --decode "1 512"
expect_exit 2 "'x' is not a token id" "$NM" tokenize "$S/stories260K.bin" "${T[@]}" --decode "1 x"
# A model without a chat template refuses --chat.
expect_exit 2 'no chat template' "$NM" tokenize "$S/stories260K.bin" "${T[@]}" --chat hi
echo '[{"role": "user"}]' >"$TMP/bad.json"
expect_exit 2 'bad.json: message 0 needs string "role" and "content"' "$NM" tokenize "$S/stories260K.bin" "${T[@]}" --messages "$TMP/bad.json"
# Tokenizer-only directories and vocabulary-only GGUF: Llama 3 byte-level BPE, BOS from the post-processor.
L3=$SHARED/tokenizers/llama-3
L31=$SHARED/tokenizers/llama-3.1
expect_eq "$("$NM" tokenize "$L3" "Hello world" --format ids)" "128000 9906 1917" "llama-3 dir"
expect_eq "$("$NM" tokenize "$SHARED/tokenizers/vectors/ggml-vocab-llama-bpe.gguf" "Hello world" --format ids)" "128000 9906 1917" "llama-bpe.gguf"
expect_eq "$("$NM" tokenize "$SHARED/tokenizers/vectors/ggml-vocab-llama-spm.gguf" "Hello world" --format ids)" "1 15043 3186" "llama-spm.gguf"
expect_eq "$("$NM" tokenize "$L31" --decode "128000 9906 1917 128009")" "Hello world" "llama-3.1 decode"
# --chat: Llama 3.1 writes its system turn with the date lines even without --system.
expect_eq "$("$NM" tokenize "$L31" --chat Hi --date "1 Jan 2025" --format ids)" \
    "128000 128006 9125 128007 271 38766 1303 33025 2696 25 6790 220 2366 18 198 15724 2696 25 220 16 4448 220 2366 20 271 128009 128006 882 128007 271 13347 128009 128006 78191 128007 271" \
    "llama-3.1 --chat"
# --messages: a whole conversation; Llama 3 has no preamble.
cat >"$TMP/pirate.json" <<'JSON'
[{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "  Hello!\n"}]
JSON
expect_eq "$("$NM" tokenize "$L3" --messages "$TMP/pirate.json" --format ids)" \
    "128000 128006 9125 128007 271 2675 527 264 55066 13 128009 128006 882 128007 271 9906 0 128009 128006 78191 128007 271" \
    "llama-3 --messages"
expect_out '"chat_text":"<\|begin_of_text\|><\|start_header_id\|>system<\|end_header_id\|>\\n\\nCutting Knowledge Date: December 2023\\nToday Date: 26 Jul 2024\\n\\nYou are a pirate.<\|eot_id\|>' \
    "$NM" tokenize "$L31" --messages "$TMP/pirate.json" --format json
expect_exit 2 'already starts with a system message' "$NM" tokenize "$L31" --messages "$TMP/pirate.json" --system "Be brief."
expect_exit 2 'either a prompt or --messages' "$NM" tokenize "$L31" --messages "$TMP/pirate.json" Hi
echo '[{"role": "tool", "content": "42"}]' >"$TMP/tool.json"
expect_exit 2 "role 'tool'; neuromap does not render tool use" "$NM" tokenize "$L31" --messages "$TMP/tool.json"
finish
