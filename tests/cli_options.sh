#!/usr/bin/env bash
# cli_options.sh — the one option parser (src/cli/options.c), command by
# command: --help lists every option (the lists below are written here, not
# read from the code), the four kinds of mistake give exit 2 and exactly one
# line, word for word, old spellings and abbreviations still work and give
# the same output as the new names, and --threads 0 (all cores) is accepted
# by every command, the atlas commands (merge, export, activations, show
# --examples, agreement, serve) and trace included.
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
expect_help activations --corpus -o --output --top-n --bottom-n --window --max-tokens --layers --threads --seed --resume --force --shard --bands \
    --progress --tokenizer
expect_help trace --prompt -p --limit --layers --format "${PROMPT_OPTS[@]}" --threads --tokenizer
expect_help agreement --row --through --alpha --neurons --format --threads
expect_help export --format --threads
expect_help serve --model --tokenizer --diff --host --port --threads
expect_help merge --output -o --force --allow-incomplete --threads
# show --examples has a table of its own (cmd_activations.c), and its own help
"$NM" show "$TMP/x" 0:0 --examples --help >"$TMP/help" 2>&1 && grep -q '^usage: neuromap show ATLAS L:N --examples' "$TMP/help" && ok ||
    fail "show --examples --help: no usage line"
for o in --examples --around --format --row --through --threads --help; do
    grep -Eq -- "(^|[ ,])$o([ ,=]|$)" "$TMP/help" && ok || fail "show --examples --help does not list $o"
done
expect_out '^usage: neuromap COMMAND' "$NM" --help
expect_out '^neuromap [0-9]+\.[0-9]+\.[0-9]+$' "$NM" --version
expect_msg 2 "unknown option '--bogus' (see 'neuromap --help')" "$NM" --bogus

# ---- the four mistakes, in every command --------------------------------------
# A missing value (the option last), a bad number, a number out of range, an unknown option.
for cmd in info map show find diff generate probe synth tokenize activations trace agreement export serve merge; do
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
expect_msg 2 "activations: --top-n needs a value" "$NM" activations "$BIN" --corpus "$TMP/x" --top-n
expect_msg 2 "activations: --window must be a whole number in 2..16777216, not '1'" "$NM" activations "$BIN" --window 1
expect_msg 2 "activations: --max-tokens must be a whole number in 1..9223372036854775807, not '0'" \
    "$NM" activations "$BIN" --max-tokens 0
expect_msg 2 "activations: --seed must be a whole number in 0..9223372036854775807, not 'x'" "$NM" activations "$BIN" --seed x
expect_msg 2 "activations: --corpus needs a value" "$NM" activations "$BIN" --corpus
expect_msg 2 "activations: --force takes no value, not '1'" "$NM" activations "$BIN" --force=1
expect_msg 2 "activations: --corpus FILE is required" "$NM" activations "$BIN" "${TOK[@]}"
expect_msg 2 "activations: expected one MODEL (see 'neuromap activations --help')" "$NM" activations --corpus "$TMP/x"
expect_msg 2 "trace: --limit must be a whole number in 1..16777216, not '0'" "$NM" trace "$BIN" -p x --limit 0
expect_msg 2 "trace: --format must be table or json, not 'tsv'" "$NM" trace "$BIN" -p x --format tsv
expect_msg 2 "trace: -p needs a value" "$NM" trace "$BIN" -p
expect_msg 2 "trace: --system needs a value" "$NM" trace "$BIN" -p x --system
expect_msg 2 "trace: -p TEXT (or --messages FILE) is required" "$NM" trace "$BIN" "${TOK[@]}"
expect_msg 2 "agreement: --alpha must be a number in (0, 1), not '1'" "$NM" agreement "$TMP/x" --alpha 1
expect_msg 2 "agreement: --alpha must be a number in (0, 1), not '0'" "$NM" agreement "$TMP/x" --alpha 0
expect_msg 2 "agreement: --alpha must be a number in (0, 1), not 'x'" "$NM" agreement "$TMP/x" --alpha=x
expect_msg 2 "agreement: --row must be gate or up, not 'down'" "$NM" agreement "$TMP/x" --row down
expect_msg 2 "agreement: --through must be head or embed, not 'tail'" "$NM" agreement "$TMP/x" --through tail
expect_msg 2 "agreement: --format must be table or json, not 'tsv'" "$NM" agreement "$TMP/x" --format tsv
expect_msg 2 "agreement: --neurons takes no value, not '3'" "$NM" agreement "$TMP/x" --neurons=3
expect_msg 2 "export: --format must be tsv or jsonl, not 'csv'" "$NM" export "$TMP/x" --format csv
expect_msg 2 "export: --format needs a value" "$NM" export "$TMP/x" --format
expect_msg 2 "export: --format tsv or --format jsonl is required" "$NM" export "$TMP/x"
expect_msg 2 "serve: --port must be a whole number in 0..65535, not '65536'" "$NM" serve "$TMP/x" --port 65536
expect_msg 2 "serve: --port must be a whole number in 0..65535, not 'http'" "$NM" serve "$TMP/x" --port http
expect_msg 2 "serve: --host needs a value" "$NM" serve "$TMP/x" --host
expect_msg 2 "serve: --model needs a value" "$NM" serve "$TMP/x" --model
expect_msg 2 "merge: -o needs a value" "$NM" merge "$TMP/x" -o
expect_msg 2 "merge: --output needs a value" "$NM" merge "$TMP/x" --output
expect_msg 2 "merge: --allow-incomplete takes no value, not 'yes'" "$NM" merge "$TMP/x" -o "$TMP/y" --allow-incomplete=yes
expect_msg 2 "merge: name the merged atlas with -o ATLAS" "$NM" merge "$TMP/x"
expect_msg 2 "merge: expected one or more PART atlases (see 'neuromap merge --help')" "$NM" merge -o "$TMP/y"
expect_msg 2 "show: --format must be table or json, not 'tsv'" "$NM" show "$TMP/x" 0:0 --examples --format tsv
expect_msg 2 "show: --around must be a whole number in 0..1048576, not '-1'" "$NM" show "$TMP/x" 0:0 --examples --around -1
expect_msg 2 "show: --row must be gate or up, not 'down'" "$NM" show "$TMP/x" 0:0 --examples --row down
expect_msg 2 "show: --through must be head or embed, not 'x'" "$NM" show "$TMP/x" 0:0 --examples --through x
expect_msg 2 "show: --around needs a value" "$NM" show "$TMP/x" 0:0 --examples --around
expect_msg 2 "show: --threads must be a whole number in 0..1024, not '1025'" "$NM" show "$TMP/x" 0:0 --examples --threads 1025
expect_msg 2 "show: unknown option '--foo' (see 'neuromap show --help')" "$NM" show "$TMP/x" 0:0 --examples --foo
expect_msg 2 "show: expected ATLAS and a neuron L:N (see 'neuromap show --examples --help')" "$NM" show "$TMP/x" --examples
[ ! -e "$TMP/never" ] && [ ! -e "$TMP/x" ] && [ ! -e "$TMP/y" ] && ok || fail "synth or merge wrote its OUT despite a bad option"

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

# The commands on atlases, made once: a map (the two shards merged) with activations added.
head -c 20000 "$SHARED/corpora/stories260K-samples.txt" >"$TMP/c.txt"
"$NM" map "$BIN" "${TOK[@]}" --matrix all --shard 0/2 -o "$TMP/p0.db" 2>/dev/null
"$NM" map "$BIN" "${TOK[@]}" --matrix all --shard 1/2 -o "$TMP/p1.db" 2>/dev/null
"$NM" merge "$TMP/p0.db" "$TMP/p1.db" -o "$TMP/m.db" 2>/dev/null &&
    "$NM" merge "$TMP/p1.db" --output="$TMP/m2.db" "$TMP/p0.db" 2>/dev/null &&
    "$NM" merge -o"$TMP/m3.db" "$TMP/p0.db" "$TMP/p1.db" --threads 0 2>/dev/null &&
    "$NM" export "$TMP/m.db" --format tsv >"$TMP/a" && "$NM" export "$TMP/m2.db" --form=tsv >"$TMP/b" &&
    "$NM" export "$TMP/m3.db" --format tsv --threads 0 >"$TMP/c" && [ "$(wc -l <"$TMP/a")" -gt 1000 ] &&
    cmp -s "$TMP/a" "$TMP/b" && cmp -s "$TMP/a" "$TMP/c" && ok ||
    fail "merge: -o ATLAS, --output=ATLAS, -oATLAS and PARTs around the options should merge the same atlas"
"$NM" activations "$BIN" "${TOK[@]}" --corpus "$TMP/c.txt" --window 64 -o "$TMP/a1.db" --threads 1 2>/dev/null
"$NM" activations "$BIN" --tok="$S/tok512.bin" --corp "$TMP/c.txt" --win=64 --output "$TMP/n.db" --threads 0 2>/dev/null
"$NM" show "$TMP/a1.db" 2:5 --examples --format json --around 3 >"$TMP/a" 2>/dev/null
"$NM" show "$TMP/n.db" 2:5 --examples --form=json --aro 3 --threads 0 >"$TMP/b" 2>/dev/null
grep -q '"activations"' "$TMP/a" && cmp -s "$TMP/a" "$TMP/b" && ok ||
    fail "activations --threads 0 (abbreviated options) should store what --threads 1 stores"
"$NM" agreement "$TMP/a1.db" --neurons --alpha 0.05 --row up >"$TMP/a" 2>/dev/null
"$NM" agreement "$TMP/a1.db" --neu --alpha=0.05 --row=up --threads 0 >"$TMP/b" 2>/dev/null
grep -q '^all ' <(sed 's/^ *//' "$TMP/a") && cmp -s "$TMP/a" "$TMP/b" && ok || fail "agreement: --threads 0 and abbreviations"
"$NM" trace "$BIN" "${TOK[@]}" -p "Once upon a time" --limit 3 --format json --threads 1 >"$TMP/a" 2>/dev/null
"$NM" trace "$BIN" "${TOK[@]}" --prompt="Once upon a time" --lim 3 --form json --threads 0 >"$TMP/b" 2>/dev/null
"$NM" trace "$BIN" "${TOK[@]}" -p"Once upon a time" --limit=3 --format=json >"$TMP/c" 2>/dev/null
grep -q '"writes"' "$TMP/a" && cmp -s "$TMP/a" "$TMP/b" && cmp -s "$TMP/a" "$TMP/c" && ok ||
    fail "trace: --threads 0 and 1, -pTEXT, --prompt=TEXT and abbreviations should give the same output"
# serve --threads 0: it starts and answers (the API itself: cli_serve.sh)
"$NM" serve "$TMP/m.db" --model "$BIN" "${TOK[@]}" --threads 0 --port 0 2>"$TMP/serve.err" &
SERVE_PID=$! PORT=""
for _ in $(seq 100); do
    PORT=$(sed -n 's|^neuromap: serving .* at http://127.0.0.1:\([0-9]*\)/$|\1|p' "$TMP/serve.err")
    [ -n "$PORT" ] && break
    kill -0 "$SERVE_PID" 2>/dev/null || break
    sleep 0.1
done
python3 -c 'import json, sys, urllib.request as u; d = json.load(u.urlopen(sys.argv[1], timeout=10)); assert d' \
    "http://127.0.0.1:$PORT/api/info" 2>/dev/null && ok || fail "serve --threads 0 did not answer: $(head -c 300 "$TMP/serve.err")"
kill -TERM "$SERVE_PID" 2>/dev/null
wait "$SERVE_PID" && ok || fail "serve --threads 0 did not stop cleanly"

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
