# tests/cli_map.sh — map, show and find on stories260K: TSV format and
# escaping, atlas round trip, agreement between the three, refusals.
source "$(dirname "$0")/lib.sh"
BIN=$M/stories260K/stories260K.bin
TOK=(--tokenizer "$M/stories260K/tok512.bin")

for c in map show find; do expect_out "^usage: neuromap $c" "$NM" $c --help; done

# ---- TSV: header, columns, ranks, escaping ----------------------------------
expect_out '^matrix	layer	neuron	rank	token_id	token	logit	prob$' "$NM" map "$BIN" "${TOK[@]}" --format tsv --layers 1 --neurons 3-4
"$NM" map "$BIN" "${TOK[@]}" --format tsv --matrix all --layers 1-2 --neurons 3-4 --top-k 3 --bottom-k 2 >"$TMP/m.tsv" 2>"$TMP/m.err"
expect_eq "$(tail -n +2 "$TMP/m.tsv" | wc -l)" $((3 * 2 * 2 * 5)) "rows for 3 matrices x 2 layers x 2 neurons x 5 ranks"
expect_eq "$(awk -F'\t' 'NF != 8' "$TMP/m.tsv" | wc -l)" 0 "every row has 8 fields"
expect_eq "$(tail -n +2 "$TMP/m.tsv" | cut -f4 | sort -n | uniq | tr '\n' ' ')" "-2 -1 1 2 3 " "ranks 1..3 and -1..-2"
expect_eq "$(cut -f1 "$TMP/m.tsv" | tail -n +2 | sort -u | tr '\n' ' ')" "down gate up " "matrix names"
if grep -Eq 'neurons/s.*GFLOP/s' "$TMP/m.err"; then ok; else fail "map prints neurons/s and GFLOP/s: $(cat "$TMP/m.err")"; fi
# every token of one neuron: the newline and the non-UTF-8 byte tokens are escaped
"$NM" map "$BIN" "${TOK[@]}" --format tsv --layers 0 --neurons 0 --top-k 512 --bottom-k 0 >"$TMP/all.tsv" 2>/dev/null
expect_eq "$(tail -n +2 "$TMP/all.tsv" | wc -l)" 512 "one row per token"
expect_eq "$(awk -F'\t' '$5 == 13 { print $6 }' "$TMP/all.tsv")" '\n' "token 13 (newline) escaped"
expect_eq "$(awk -F'\t' '$5 == 12 { print $6 }' "$TMP/all.tsv")" '\t' "byte token <0x09> (tab) escaped"
expect_eq "$(awk -F'\t' '$5 == 30 { print $6 }' "$TMP/all.tsv")" '\x1B' "byte token <0x1B> escaped"
expect_eq "$(awk -F'\t' '$5 == 131 { print $6 }' "$TMP/all.tsv")" '\x80' "byte token <0x80> (not UTF-8) escaped"
expect_eq "$(awk -F'\t' 'NF != 8' "$TMP/all.tsv" | wc -l)" 0 "escaped rows keep 8 fields"
# probabilities over the full vocabulary sum to 1
expect_eq "$(awk -F'\t' 'NR > 1 { s += $8 } END { printf "%.4f", s }' "$TMP/all.tsv")" "1.0000" "probabilities sum to 1"
# logits fall with rank
expect_eq "$(awk -F'\t' 'NR > 2 && $7 > prev { bad++ } { prev = $7 } END { print bad + 0 }' "$TMP/all.tsv")" 0 "logits sorted"
expect_out '"top":\[\{"rank":1,"token_id":' "$NM" map "$BIN" "${TOK[@]}" --format jsonl --layers 0 --neurons 0-2
expect_eq "$(wc -l <"$TMP/out")" 3 "jsonl: one line per neuron"

# ---- refusals ---------------------------------------------------------------
expect_exit 2 'layers.*outside 0-4' "$NM" map "$BIN" "${TOK[@]}" --format tsv --layers 5
expect_exit 2 'neurons.*start' "$NM" map "$BIN" "${TOK[@]}" --format tsv --neurons 9-3
expect_exit 2 'neurons.*outside' "$NM" map "$BIN" "${TOK[@]}" --format tsv --neurons 0-172
expect_exit 2 'bad range' "$NM" map "$BIN" "${TOK[@]}" --format tsv --layers x
expect_exit 2 'vocabulary' "$NM" map "$BIN" "${TOK[@]}" --format tsv --top-k 513
expect_exit 2 'matrix' "$NM" map "$BIN" "${TOK[@]}" --matrix mlp
expect_exit 2 'norm' "$NM" map "$BIN" "${TOK[@]}" --norm l2
expect_exit 2 'format' "$NM" map "$BIN" "${TOK[@]}" --format csv
expect_exit 2 'unknown' "$NM" map "$BIN" "${TOK[@]}" --bogus
expect_exit 2 'no such file' "$NM" map "$TMP/none.bin" "${TOK[@]}"
expect_exit 2 'outside the model' "$NM" show "$BIN" "${TOK[@]}" 5:0
expect_exit 2 'outside the model' "$NM" show "$BIN" "${TOK[@]}" 0:172
expect_exit 2 'bad neuron' "$NM" show "$BIN" "${TOK[@]}" 3
expect_exit 2 'bad neuron' "$NM" show "$BIN" "${TOK[@]}" a:3
# several tokens: refused with the pieces (issue 13, item 7); --first-piece searches the first
expect_exit 2 '^neuromap: find: " dog" is 2 tokens: " do" \+ "g"; give one token, or --first-piece$' "$NM" find "$BIN" "${TOK[@]}" " dog"
expect_eq "$(wc -c <"$TMP/out")" 0 "a refused find prints no list"
expect_exit 2 '" Lilyx" is 2 tokens: " Lily" \+ "x"' "$NM" find "$BIN" "${TOK[@]}" " Lilyx"
expect_exit 0 'not a single token; using its first token of 2, 317 " Lily"' "$NM" find "$BIN" "${TOK[@]}" " Lilyx" --first-piece
expect_exit 2 'limit' "$NM" find "$BIN" "${TOK[@]}" " Lily" --limit 0

# ---- atlas: atomic write, --force, round trip --------------------------------
A=$TMP/s.db
expect_exit 0 'writing' "$NM" map "$BIN" "${TOK[@]}" -o "$A" --matrix all
expect_eq "$(ls "$TMP" | grep -c 'tmp-')" 0 "no temporary file left behind"
before=$(cksum <"$A")
expect_exit 2 'exists.*--force' "$NM" map "$BIN" "${TOK[@]}" -o "$A" --layers 0
expect_eq "$(cksum <"$A")" "$before" "refused map leaves the atlas untouched"
expect_exit 0 '' "$NM" map "$BIN" "${TOK[@]}" -o "$TMP/small.db" --layers 0 --neurons 0-9 --top-k 3
expect_exit 0 '' "$NM" map "$BIN" "${TOK[@]}" -o "$TMP/small.db" --layers 0 --neurons 0-9 --top-k 3 --force
expect_exit 2 'holds no up neuron 1:0' "$NM" show "$TMP/small.db" 1:0
expect_exit 2 'not a token.*cannot tokenize' "$NM" find "$TMP/small.db" " Lilyx"
if command -v sqlite3 >/dev/null; then
    expect_eq "$(sqlite3 "$A" "select count(*) from neurons")" 2580 "atlas holds every neuron"
    expect_eq "$(sqlite3 "$A" "select value from meta where key='norm'")" full "atlas records the norm"
fi

# show from the model and from the atlas, and map's TSV, agree on a neuron
for spec in "up 4:38" "gate 1:9" "down 2:100"; do  # (not gate 0:9: its top two logits tie within 1.1e-6)
    set -- $spec
    "$NM" map "$BIN" "${TOK[@]}" --format tsv --matrix "$1" --layers "${2%:*}" --neurons "${2#*:}" >"$TMP/map1" 2>/dev/null
    "$NM" show "$BIN" "${TOK[@]}" "$2" --matrix "$1" --format tsv >"$TMP/show_m" 2>/dev/null
    "$NM" show "$A" "$2" --matrix "$1" --format tsv >"$TMP/show_a" 2>/dev/null
    expect_eq "$(cut -f1-6 "$TMP/show_m")" "$(cut -f1-6 "$TMP/map1")" "show (model) = map for $spec: tokens"
    expect_eq "$(cut -f1-6 "$TMP/show_a")" "$(cut -f1-6 "$TMP/map1")" "show (atlas) = map for $spec: tokens"
    expect_eq "$(paste "$TMP/show_m" "$TMP/map1" | awk -F'\t' 'NR > 1 && (($7 - $15) ^ 2 > 1e-10 * ($15 ^ 2 + 1) || ($8 - $16) ^ 2 > 1e-12) { bad++ } END { print bad + 0 }')" 0 "show (model) = map for $spec: logits, probs"
    expect_eq "$(paste "$TMP/show_a" "$TMP/map1" | awk -F'\t' 'NR > 1 && (($7 - $15) ^ 2 > 1e-10 * ($15 ^ 2 + 1) || ($8 - $16) ^ 2 > 1e-12) { bad++ } END { print bad + 0 }')" 0 "show (atlas) = map for $spec: logits, probs"
done
expect_exit 2 'mapped with --norm full' "$NM" show "$A" 4:38 --norm none
expect_exit 2 'holds the top 10' "$NM" show "$A" 4:38 --top-k 11

# find on the model: its first neuron's logit and rank are map's for that token
"$NM" find "$BIN" "${TOK[@]}" " Lily" --format tsv --limit 5 >"$TMP/find_m" 2>/dev/null
expect_eq "$(head -1 "$TMP/find_m")" "$(printf 'matrix\tlayer\tneuron\tlogit\trank\ttop_token')" "find TSV header"
expect_eq "$(tail -n +2 "$TMP/find_m" | wc -l)" 5 "find --limit 5"
read -r fm fl fn flogit frank ftop < <(sed -n 2p "$TMP/find_m")
"$NM" map "$BIN" "${TOK[@]}" --format tsv --matrix "$fm" --layers "$fl" --neurons "$fn" --top-k 512 --bottom-k 0 >"$TMP/map_f" 2>/dev/null
expect_eq "$(awk -F'\t' '$6 == " Lily" { print $4 }' "$TMP/map_f")" "$frank" "find's rank = map's rank of ' Lily'"
expect_eq "$(awk -F'\t' -v x="$flogit" '$6 == " Lily" { print (($7 - x) ^ 2 < 1e-10 * (x ^ 2 + 1)) }' "$TMP/map_f")" 1 "find's logit = map's"
expect_eq "$(awk -F'\t' '$4 == 1 { print $6 }' "$TMP/map_f")" "$(sed -n 2p "$TMP/find_m" | cut -f6)" "find's top token = map's rank 1"
# find's logits fall, and no neuron of the whole map has a higher one
expect_eq "$(tail -n +2 "$TMP/find_m" | awk -F'\t' 'NR > 1 && $4 > prev { bad++ } { prev = $4 } END { print bad + 0 }')" 0 "find sorted"
"$NM" map "$BIN" "${TOK[@]}" --format tsv --top-k 512 --bottom-k 0 2>/dev/null | awk -F'\t' '$6 == " Lily"' | sort -t$'\t' -k7,7gr | head -1 >"$TMP/best"
expect_eq "$(cut -f1-3 "$TMP/best")" "$(printf '%s\t%s\t%s' "$fm" "$fl" "$fn")" "find's first neuron has the map's highest ' Lily' logit"
# find on the atlas: the same first neuron, from the stored lists
"$NM" find "$A" " Lily" --format tsv --limit 3 >"$TMP/find_a" 2>"$TMP/find_a.err"
expect_eq "$(sed -n 2p "$TMP/find_a" | cut -f1-3)" "$(printf '%s\t%s\t%s' "$fm" "$fl" "$fn")" "find on the atlas agrees"
if grep -q 'stored' "$TMP/find_a.err"; then ok; else fail "find on an atlas says it searched stored lists"; fi
expect_out 'matrix +layer +neuron +logit +rank +top_token' "$NM" find "$BIN" "${TOK[@]}" " mom" --matrix all --limit 3

# ---- planted neurons (neuromap synth) are recovered ----------------------------
# synth sets chosen up/gate rows to a token's unembedding direction: map must
# name that token first, and find must rank that neuron first for it. In GGUF
# F32 and HF BF16 with synth's own vocabulary, and with the real Llama 3.1
# tokenizer (byte-level BPE: " dog" is stored as "Ġdog").
plants=("0:5= dog" "0:77= cat" "1:0= Paris" "1:191= happy")
args=()
for p in "${plants[@]}"; do args+=(--plant "$p"); done
"$NM" synth "$TMP/p.gguf" --preset tiny "${args[@]}" >/dev/null 2>&1
"$NM" synth "$TMP/p-hf" --preset tiny --dtype bf16 --seed 7 "${args[@]}" >/dev/null 2>&1
"$NM" synth "$TMP/p-l3" --preset tiny --tokenizer "$SHARED/tokenizers/llama-3.1" --plant "1:42= dog" --plant "0:7= California" >/dev/null 2>&1
check_plants() { # MODEL "L:N=TEXT"...
    local model=$1; shift
    "$NM" map "$model" --matrix all --format tsv --top-k 1 --bottom-k 0 >"$TMP/pm.tsv" 2>/dev/null
    for p in "$@"; do
        local ln=${p%%=*} text=${p#*=}
        for mx in up gate; do
            expect_eq "$(awk -F'\t' -v m="$mx" -v l="${ln%:*}" -v n="${ln#*:}" '$1 == m && $2 == l && $3 == n { print $6 }' "$TMP/pm.tsv")" \
                "$text" "$model: planted $mx $ln top-1"
        done
        "$NM" find "$model" "$text" --format tsv --limit 1 >"$TMP/pf.tsv" 2>/dev/null
        expect_eq "$(sed -n 2p "$TMP/pf.tsv" | cut -f1-3,5)" "$(printf 'up\t%s\t%s\t1' "${ln%:*}" "${ln#*:}")" "$model: find '$text' ranks $ln first"
    done
}
check_plants "$TMP/p.gguf" "${plants[@]}"
check_plants "$TMP/p-hf" "${plants[@]}"
check_plants "$TMP/p-l3" "1:42= dog" "0:7= California"

finish
