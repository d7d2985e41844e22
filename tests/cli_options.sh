#!/usr/bin/env bash
# cli_options.sh — the one option parser (src/cli/options.c), command by
# command: --help lists every option (the lists below are written here, not
# read from the code), the four kinds of mistake give exit 2 and exactly one
# line, word for word, old spellings and abbreviations still work and give
# the same output as the new names, and --threads 0 (all cores) is accepted
# by every command.
source "$(dirname "$0")/lib.sh"
S=$M/stories260K
BIN=$S/stories260K.bin
TOK=(--tokenizer "$S/tok512.bin")

# expect_msg CODE MESSAGE CMD...: exit CODE and stderr exactly "neuromap: MESSAGE", one line.
expect_msg() {
    local code=$1 msg=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ "$rc" -ne "$code" ]; then fail "$* exited $rc, want $code: $(head -c 300 "$TMP/err")"; return; fi
    local want="neuromap: $msg"
    if [ "$(cat "$TMP/err")" != "$want" ] || [ "$(wc -l <"$TMP/err")" -ne 1 ]; then
        fail "$*: stderr is '$(head -c 300 "$TMP/err")', want '$want'"
        return
    fi
    ok
}

# expect_help CMD OPTION...: `neuromap CMD --help` exits 0 and names every OPTION
# (as a whole word), and -h prints the same.
expect_help() {
    local cmd=$1; shift
    "$NM" "$cmd" --help >"$TMP/help" 2>"$TMP/err" || { fail "$cmd --help exited non-zero: $(head -c 300 "$TMP/err")"; return; }
    grep -q "^usage: neuromap $cmd" "$TMP/help" || fail "$cmd --help: no usage line"
    for o in "$@" --help; do
        grep -Eq -- "(^|[ ,])$o([ ,=]|$)" "$TMP/help" && ok || fail "$cmd --help does not list $o"
    done
    "$NM" "$cmd" -h >"$TMP/h" 2>&1 && cmp -s "$TMP/h" "$TMP/help" && ok || fail "$cmd -h differs from --help"
}

# ---- --help: every option of every command ----------------------------------
PROMPT_OPTS=(--special --bos --no-bos --chat --system --messages --date)
HOOK_OPTS=(--clamp --scale --clamp-site --clamp-positions)
expect_help info --tokenizer --format --json --threads
expect_help map --output -o --matrix --layers --neurons --top-k --bottom-k --norm --threads --format --force --resume \
    --progress --tokenizer --kernel --prefilter --prob-tol
expect_help show --matrix --top-k --bottom-k --norm --format --threads --tokenizer
expect_help find --matrix --limit --norm --agreement --format --threads --tokenizer
expect_help diff --matrix --matrix-pair --matrices --top-k --limit --plot --format --norm --layers --threads --tokenizer --progress
expect_help generate --prompt -p --tokens -n --temp --top-p --seed "${PROMPT_OPTS[@]}" "${HOOK_OPTS[@]}" --compare --format \
    --truncate --threads --stats --tokenizer
expect_help probe --prompt -p --target --sweep --top-k "${HOOK_OPTS[@]}" "${PROMPT_OPTS[@]}" --format --truncate --threads --tokenizer
expect_help synth --preset --hidden --ffn --layers --heads --kv-heads --context --vocab --tied --untied --tokenizer-dir \
    --tokenizer --file-format --format --dtype --seed --std --norm-noise --plant --plant-matrix --plant-scale --plant-boost \
    --progress --force --threads
expect_help tokenize --file -f --decode --format --tokenizer -t --stats --threads "${PROMPT_OPTS[@]}"
expect_out '^usage: neuromap COMMAND' "$NM" --help
expect_out '^neuromap [0-9]+\.[0-9]+\.[0-9]+$' "$NM" --version
expect_msg 2 "unknown option '--bogus' (see 'neuromap --help')" "$NM" --bogus

# ---- the four mistakes, in every command --------------------------------------
# A missing value (the option last), a bad number, a number out of range, an unknown option.
for cmd in info map show find diff generate probe synth tokenize; do
    expect_msg 2 "$cmd: --threads needs a value" "$NM" $cmd "$TMP/x" --threads
    expect_msg 2 "$cmd: --threads must be a whole number in 0..1024, not 'x'" "$NM" $cmd "$TMP/x" --threads x
    expect_msg 2 "$cmd: --threads must be a whole number in 0..1024, not '1025'" "$NM" $cmd "$TMP/x" --threads 1025
    expect_msg 2 "$cmd: --threads must be a whole number in 0..1024, not '-1'" "$NM" $cmd "$TMP/x" --threads=-1
    expect_msg 2 "$cmd: unknown option '--foo' (see 'neuromap $cmd --help')" "$NM" $cmd "$TMP/x" --foo
    expect_msg 2 "$cmd: unknown option '--foo' (see 'neuromap $cmd --help')" "$NM" $cmd "$TMP/x" --foo=1
    expect_msg 2 "$cmd: unknown option '-Z' (see 'neuromap $cmd --help')" "$NM" $cmd "$TMP/x" -Z
done
expect_msg 2 "show: --top-k needs a value" "$NM" show "$BIN" 0:0 --top-k
expect_msg 2 "show: --top-k must be a whole number in 0..4194304, not 'x'" "$NM" show "$BIN" 0:0 --top-k x
expect_msg 2 "show: --top-k must be a whole number in 0..4194304, not '4194305'" "$NM" show "$BIN" 0:0 --top-k 4194305
expect_msg 2 "show: --matrix must be up, gate or down, not 'x'" "$NM" show "$BIN" 0:0 --matrix x
expect_msg 2 "map: --matrix must be up, gate, down or all, not 'mlp'" "$NM" map "$BIN" --matrix mlp
expect_msg 2 "map: --format must be sqlite, tsv or jsonl, not 'csv'" "$NM" map "$BIN" --format csv
expect_msg 2 "map: --kernel must be auto, openblas or native, not 'cuda'" "$NM" map "$BIN" --kernel cuda
expect_msg 2 "map: --prob-tol must be a number in 0..inf, not '-1'" "$NM" map "$BIN" --prefilter --prob-tol -1
expect_msg 2 "map: -o needs a value" "$NM" map "$BIN" -o
expect_msg 2 "map: --force takes no value, not '1'" "$NM" map "$BIN" --force=1
expect_msg 2 "map: option '--pro' is ambiguous (--progress, --prob-tol)" "$NM" map "$BIN" --pro 1
expect_msg 2 "find: --limit must be a whole number in 1..10000, not '0'" "$NM" find "$BIN" x --limit 0
expect_msg 2 "find: --norm must be full, gain or none, not 'l2'" "$NM" find "$BIN" x --norm l2
expect_msg 2 "diff: --top-k must be a whole number in 1..1000, not '0'" "$NM" diff "$BIN" "$BIN" --top-k 0
expect_msg 2 "diff: --format must be table, json or tsv, not 'csv'" "$NM" diff "$BIN" "$BIN" --format csv
expect_msg 2 "generate: -n must be a whole number in 1..16777216, not '0'" "$NM" generate "$BIN" -n 0
expect_msg 2 "generate: --tokens must be a whole number in 1..16777216, not 'many'" "$NM" generate "$BIN" --tokens many
expect_msg 2 "generate: --top-p must be a number in (0, 1], not '0'" "$NM" generate "$BIN" --top-p 0
expect_msg 2 "generate: --top-p must be a number in (0, 1], not '1.5'" "$NM" generate "$BIN" --top-p 1.5
expect_msg 2 "generate: --temp must be a number in 0..100, not 'hot'" "$NM" generate "$BIN" --temp hot
expect_msg 2 "generate: --format must be text or json, not 'xml'" "$NM" generate "$BIN" --format xml
expect_msg 2 "generate: --clamp-site must be up or act, not 'down'" "$NM" generate "$BIN" --clamp-site down
expect_msg 2 "generate: -p needs a value" "$NM" generate "$BIN" -p
expect_msg 2 "probe: --top-k must be a whole number in 1..1000, not '1001'" "$NM" probe "$BIN" --top-k 1001
expect_msg 2 "synth: --hidden must be a whole number in 2..65536, not '1'" "$NM" synth "$TMP/never" --hidden 1
expect_msg 2 "synth: --std must be a number in 1e-06..10, not '11'" "$NM" synth "$TMP/never" --std 11
expect_msg 2 "synth: --dtype must be f32, bf16, f16 or q8_0, not 'f64'" "$NM" synth "$TMP/never" --dtype f64
expect_msg 2 "synth: --file-format must be hf or gguf, not 'onnx'" "$NM" synth "$TMP/never" --file-format onnx
expect_msg 2 "synth: --format must be hf or gguf, not 'onnx'" "$NM" synth "$TMP/never" --format onnx
expect_msg 2 "synth: --plant-matrix must be up, gate or both, not 'down'" "$NM" synth "$TMP/never" --plant-matrix down
expect_msg 2 "tokenize: --format must be table, ids or json, not 'xml'" "$NM" tokenize "$BIN" --format xml
expect_msg 2 "tokenize: -f needs a value" "$NM" tokenize "$BIN" -f
expect_msg 2 "info: -f must be table or json, not 'yaml'" "$NM" info "$BIN" -f yaml  # named as written
[ ! -e "$TMP/never" ] && [ ! -e "$TMP/x" ] && ok || fail "synth wrote its OUT despite a bad option"

# ---- the ways of writing an option ----------------------------------------------
"$NM" show "$BIN" 3:7 "${TOK[@]}" --top-k 4 --format tsv >"$TMP/a" 2>/dev/null
"$NM" show "$BIN" 3:7 --tokenizer="$S/tok512.bin" --top-k=4 --form=tsv >"$TMP/b" 2>/dev/null
"$NM" show --top-k 4 "${TOK[@]}" "$BIN" --format tsv 3:7 >"$TMP/c" 2>/dev/null
[ -s "$TMP/a" ] && cmp -s "$TMP/a" "$TMP/b" && cmp -s "$TMP/a" "$TMP/c" && ok ||
    fail "show: --name=VALUE, an abbreviation and options between the arguments should give the same output"
expect_msg 2 "show: neuron 3:70000 is outside the model (5 layers of 172 neurons)" "$NM" show "$BIN" "${TOK[@]}" -- 3:70000
"$NM" map "$BIN" "${TOK[@]}" --layers 1 --neurons 0-9 -o "$TMP/a.db" 2>/dev/null && "$NM" map "$BIN" "${TOK[@]}" \
    --layers 1 --neurons 0-9 -o"$TMP/b.db" 2>/dev/null && [ -s "$TMP/a.db" ] && [ -s "$TMP/b.db" ] && ok ||
    fail "map: -o FILE and -oFILE"
"$NM" info "$BIN" "${TOK[@]}" --json >"$TMP/a" 2>/dev/null
"$NM" info "$BIN" -t "$S/tok512.bin" -f json >"$TMP/b" 2>/dev/null
grep -Eq '"format":[[:space:]]*"llama2c"' "$TMP/a" && cmp -s "$TMP/a" "$TMP/b" && ok || fail "info: --json = -f json, -t FILE"

# ---- old spellings: the same output as the new names ------------------------------
"$NM" diff "$BIN" "${TOK[@]}" --matrix-pair up,down --format tsv >"$TMP/a" 2>/dev/null
"$NM" diff "$BIN" "${TOK[@]}" --matrices up,down --format tsv >"$TMP/b" 2>/dev/null
[ -s "$TMP/a" ] && cmp -s "$TMP/a" "$TMP/b" && ok || fail "diff: --matrices differs from --matrix-pair"
expect_msg 2 "diff: --matrix-pair wants two different matrices of up, gate, down (e.g. up,down), not 'up,up'" \
    "$NM" diff "$BIN" "${TOK[@]}" --matrices up,up
"$NM" synth "$TMP/new.gguf" --file-format hf --seed 3 2>/dev/null && "$NM" synth "$TMP/old.gguf" --format hf --seed 3 2>/dev/null &&
    [ -f "$TMP/new.gguf/config.json" ] && cmp -s "$TMP/new.gguf/model.safetensors" "$TMP/old.gguf/model.safetensors" && ok ||
    fail "synth: --format hf should write the HF directory --file-format hf writes"
TD=$SHARED/tokenizers/llama-3.1
if [ -f "$TD/tokenizer.json" ]; then
    "$NM" synth "$TMP/t-new.gguf" --tokenizer-dir "$TD" --hidden 32 --ffn 64 --layers 1 --heads 2 --kv-heads 2 2>/dev/null &&
        "$NM" synth "$TMP/t-old.gguf" --tokenizer "$TD" --hidden 32 --ffn 64 --layers 1 --heads 2 --kv-heads 2 2>/dev/null &&
        cmp -s "$TMP/t-new.gguf" "$TMP/t-old.gguf" && ok || fail "synth: --tokenizer DIR should equal --tokenizer-dir DIR"
else
    skip "no $TD/tokenizer.json"
fi

# ---- --threads 0 (all cores) in every command --------------------------------------
expect_out '^format +llama2c' "$NM" info "$BIN" "${TOK[@]}" --threads 0
expect_out '^up	1	0	1	' "$NM" map "$BIN" "${TOK[@]}" --layers 1 --neurons 0 --format tsv --threads 0
expect_out '^up 3:7' "$NM" show "$BIN" 3:7 "${TOK[@]}" --threads 0
expect_out 'rank' "$NM" find "$BIN" " named" "${TOK[@]}" --limit 2 --threads 0
expect_out '"top1_agreement":1,' "$NM" diff "$BIN" "$BIN" "${TOK[@]}" --layers 0 --format json --threads 0
expect_out '"baseline"' "$NM" generate "$BIN" "${TOK[@]}" -n 3 --temp 0 --format json --threads 0
expect_out '"target_ids"' "$NM" probe "$BIN" "${TOK[@]}" -p "Once upon" --target " a" --format json --threads 0
expect_exit 0 '' "$NM" synth "$TMP/t0.gguf" --seed 2 --threads 0
expect_out '^1 ' "$NM" tokenize "$BIN" "${TOK[@]}" --format ids "Once" --threads 0
# and the same bits as one thread
"$NM" map "$BIN" "${TOK[@]}" --matrix all --format tsv --threads 0 >"$TMP/a" 2>/dev/null
"$NM" map "$BIN" "${TOK[@]}" --matrix all --format tsv --threads 1 >"$TMP/b" 2>/dev/null
[ "$(wc -l <"$TMP/a")" -eq $((1 + 2580 * 15)) ] && cmp -s "$TMP/a" "$TMP/b" && ok || fail "map: --threads 0 and 1 differ"
"$NM" generate "$BIN" "${TOK[@]}" -n 40 --seed 5 --threads 0 >"$TMP/a" 2>/dev/null
"$NM" generate "$BIN" "${TOK[@]}" -n 40 --seed 5 --threads 1 >"$TMP/b" 2>/dev/null
[ -s "$TMP/a" ] && cmp -s "$TMP/a" "$TMP/b" && ok || fail "generate: --threads 0 and 1 differ"
finish
