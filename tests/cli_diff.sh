# tests/cli_diff.sh — diff on stories260K and its dog fine-tune: the three
# output formats agree with each other, models and atlases give the same
# numbers, read vs write, the SVG plot, and every refusal.
source "$(dirname "$0")/lib.sh"
BIN=$M/stories260K/stories260K.bin
DOGS=$M/stories260K-dogs/stories260K-dogs.bin
TOK=(--tokenizer "$M/stories260K/tok512.bin")

expect_out '^usage: neuromap diff A B' "$NM" diff --help
expect_out '^  diff +compare two checkpoints' "$NM" --help

# ---- a model against itself: a sanity check only (both sides run the same code);
# the evidence is test_diff.c's double-precision reference and the dogs counts below
expect_out '"top1_agreement":1,' "$NM" diff "$BIN" "$BIN" "${TOK[@]}" --matrix all --format json
if grep -q '"n_neurons":2580,' "$TMP/out" && grep -q '"jaccard":1,"spearman":1' "$TMP/out" && grep -q '"changed":\[\]' "$TMP/out"; then ok
else fail "self diff: 2580 neurons, Jaccard 1, Spearman 1, nothing changed: $(head -c 300 "$TMP/out")"; fi
expect_eq "$(grep -o '"per_layer":\[[^]]*\]' "$TMP/out" | grep -o '"matrix":"[a-z]*","layer":[0-9],"n_neurons":172,"top1_same":172,"top1_agreement":1' | wc -l)" 15 "self: 15 per-layer objects at 100%"

# ---- base vs fine-tune: the counts of stories260K-dogs/README.md --------------
"$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --matrix all --format json --limit 5 >"$TMP/dogs.json" 2>"$TMP/dogs.err"
expect_eq "$?" 0 "diff base vs dogs exits 0"
# per matrix: up 755, gate 748 (747 in float32), down 742, each within 2
for want in up:755 gate:748 down:742; do
    got=$(grep -o "\"per_matrix\":\[.*\],\"per_layer\"" "$TMP/dogs.json" | grep -o "\"matrix\":\"${want%:*}\",\"n_neurons\":860,\"top1_same\":[0-9]*" | grep -o '[0-9]*$')
    if [ -n "$got" ] && [ $((got - ${want#*:})) -le 2 ] && [ $((${want#*:} - got)) -le 2 ]; then ok; else fail "dogs ${want%:*}: $got, README ${want#*:}"; fi
done
expect_eq "$(grep -o '"changed":\[.*\]' "$TMP/dogs.json" | grep -o '"before"' | wc -l)" 5 "--limit 5 lists 5 changed neurons"
agreement=$(grep -o '^{[^[]*"top1_agreement":[0-9.]*' "$TMP/dogs.json" | grep -o '[0-9.]*$')
expect_eq "$(awk -v a="$agreement" 'BEGIN { print (a > 0.865 && a < 0.875) }')" 1 "overall agreement $agreement = 2244/2580 within a few neurons"

# the table: summary, bar chart, changed list; TSV: one row per neuron, same count
expect_out '^up +860 +755 +87\.79%' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}"
if grep -Eq '^up +L0 +157/172 +91\.3% \|#+\.+\|$' "$TMP/out" && grep -q '^changed most' "$TMP/out"; then ok
else fail "table has the per-layer bar chart and the changed list: $(cat "$TMP/out")"; fi
"$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --matrix all --format tsv >"$TMP/dogs.tsv" 2>/dev/null
expect_eq "$(head -1 "$TMP/dogs.tsv")" "$(printf 'matrix\tlayer\tneuron\ttop1_a\ttoken_a\tprob_a\ttop1_b\ttoken_b\tprob_b\tsame\tjaccard\tspearman')" "TSV header"
expect_eq "$(tail -n +2 "$TMP/dogs.tsv" | wc -l)" 2580 "TSV: one row per neuron"
expect_eq "$(awk -F'\t' 'NF != 12' "$TMP/dogs.tsv" | wc -l)" 0 "TSV: 12 fields per row"
expect_eq "$(awk -F'\t' 'NR > 1 && $1 == "gate" { s += $10 } END { print s }' "$TMP/dogs.tsv")" \
    "$(grep -o '"matrix":"gate","n_neurons":860,"top1_same":[0-9]*' "$TMP/dogs.json" | grep -o '[0-9]*$')" "TSV and JSON agree (gate)"
expect_eq "$(awk -F'\t' 'NR > 1 && ($10 != ($4 == $7)) { bad++ } END { print bad + 0 }' "$TMP/dogs.tsv")" 0 "TSV: same = (top1_a == top1_b)"
expect_eq "$(awk -F'\t' 'NR > 1 && $10 == 0 && $11 == 1 && $12 == 1 { bad++ } END { print bad + 0 }' "$TMP/dogs.tsv")" 0 "a changed top-1 never has identical lists"

# ---- atlases: the same numbers as the models ----------------------------------
"$NM" map "$BIN" "${TOK[@]}" --matrix all -o "$TMP/base.db" 2>/dev/null
"$NM" map "$DOGS" "${TOK[@]}" --matrix all -o "$TMP/dogs.db" 2>/dev/null
"$NM" diff "$TMP/base.db" "$TMP/dogs.db" --matrix all --format tsv >"$TMP/atlas.tsv" 2>/dev/null
expect_eq "$(cut -f1-4,7,10 "$TMP/atlas.tsv" | md5sum)" "$(cut -f1-4,7,10 "$TMP/dogs.tsv" | md5sum)" "atlas vs atlas = model vs model"
"$NM" diff "$TMP/base.db" "$DOGS" "${TOK[@]}" --matrix all --format tsv >"$TMP/mixed.tsv" 2>/dev/null
expect_eq "$(cut -f1-4,7,10 "$TMP/mixed.tsv" | md5sum)" "$(cut -f1-4,7,10 "$TMP/dogs.tsv" | md5sum)" "atlas vs model = model vs model"
expect_out "^gate +516 " "$NM" diff "$TMP/base.db" "$TMP/dogs.db" --matrix gate --layers 1-3 --top-k 5
if grep -q 'top-5 lists, layers 1-3' "$TMP/out"; then ok; else fail "--top-k 5 --layers 1-3 reported: $(head -3 "$TMP/out")"; fi

# atlases made with other options are refused, with the reason
"$NM" map "$DOGS" "${TOK[@]}" --norm none -o "$TMP/none.db" 2>/dev/null
"$NM" map "$DOGS" "${TOK[@]}" --top-k 5 -o "$TMP/k5.db" 2>/dev/null
"$NM" map "$DOGS" "${TOK[@]}" --neurons 0-99 -o "$TMP/part.db" 2>/dev/null
"$NM" map "$DOGS" "${TOK[@]}" --layers 0-2 -o "$TMP/l02.db" 2>/dev/null
expect_exit 2 'base\.db was mapped with --norm full but .*none\.db with --norm none' "$NM" diff "$TMP/none.db" "$TMP/base.db"
expect_exit 2 'none\.db was mapped with --norm none; diff was asked for --norm full' "$NM" diff "$TMP/none.db" "$BIN" "${TOK[@]}" --norm full
expect_exit 0 '' "$NM" diff "$TMP/none.db" "$BIN" "${TOK[@]}"
expect_exit 2 'k5\.db holds the top 5 tokens of each neuron; --top-k 10' "$NM" diff "$TMP/base.db" "$TMP/k5.db" --top-k 10
expect_out 'top-5 lists' "$NM" diff "$TMP/base.db" "$TMP/k5.db"
expect_exit 2 'part\.db maps neurons 0-99 only' "$NM" diff "$TMP/base.db" "$TMP/part.db"
expect_exit 2 'l02\.db maps layers 0-2 only' "$NM" diff "$TMP/base.db" "$TMP/l02.db"
expect_exit 0 '' "$NM" diff "$TMP/base.db" "$TMP/l02.db" --layers 0-2
expect_exit 2 'k5\.db holds no gate neurons \(it maps up\)' "$NM" diff "$TMP/base.db" "$TMP/k5.db" --matrix gate

# ---- checkpoints that cannot be compared ---------------------------------------
# another vocabulary: tok512.bin with " Lily" spelt " Mily", through an atlas
perl -pe 's/ Lily/ Mily/' <"$M/stories260K/tok512.bin" >"$TMP/tok_mily.bin"
"$NM" map "$BIN" --tokenizer "$TMP/tok_mily.bin" -o "$TMP/mily.db" 2>/dev/null
lily=$("$NM" find "$BIN" "${TOK[@]}" " Lily" --limit 1 2>&1 >/dev/null | grep -o 'token [0-9]*' | grep -o '[0-9]*')
expect_exit 2 "different vocabularies: token $lily is \" Lily\" in the first, \" Mily\" in the second" "$NM" diff "$BIN" "$TMP/mily.db" "${TOK[@]}"
# another shape: an atlas of 3 layers claims to come from a model like stories260K
cp "$TMP/l02.db" "$TMP/three.db"
sqlite3 "$TMP/three.db" "update meta set value = '3' where key = 'n_layers'" 2>/dev/null &&
    expect_exit 2 'differ in number of layers \(5 against 3\)' "$NM" diff "$BIN" "$TMP/three.db" "${TOK[@]}"

# ---- read vs write within one model --------------------------------------------
expect_out '^up/down +860 ' "$NM" diff "$BIN" "${TOK[@]}" --matrices up,down
if grep -q '^neurons that write the token they read' "$TMP/out"; then ok; else fail "read-write table lists neurons"; fi
"$NM" diff "$BIN" "${TOK[@]}" --matrices up,down --format json --limit 3 >"$TMP/rw.json" 2>/dev/null
expect_eq "$(grep -o '"read_write":true' "$TMP/rw.json")" '"read_write":true' "JSON says read_write"
expect_eq "$(grep -o '"read_write_neurons":\[.*\]' "$TMP/rw.json" | grep -o '"reads"' | wc -l)" 3 "--limit 3 lists 3 read-write neurons"
# each listed neuron's up and down top-1 (from show) are one token
grep -o '"matrix":"up/down","layer":[0-9]*,"neuron":[0-9]*' "$TMP/rw.json" | grep -o '[0-9]*,"neuron":[0-9]*' | tr -d '"neuron:' | tr ',' ':' >"$TMP/rw.list"
while read -r ln; do
    up=$("$NM" show "$BIN" "${TOK[@]}" "$ln" --matrix up --format tsv 2>/dev/null | awk -F'\t' '$4 == 1 { print $5 }')
    down=$("$NM" show "$BIN" "${TOK[@]}" "$ln" --matrix down --format tsv 2>/dev/null | awk -F'\t' '$4 == 1 { print $5 }')
    expect_eq "$up" "$down" "read-write neuron $ln: up and down top-1 agree"
done <"$TMP/rw.list"
expect_eq "$(wc -l <"$TMP/rw.list")" 3 "three neurons checked"
expect_out '^gate/down ' "$NM" diff "$TMP/base.db" --matrices gate,down

# ---- the SVG plot --------------------------------------------------------------
expect_exit 0 'wrote .*dogs\.svg' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --matrix all --plot "$TMP/dogs.svg" --format json
if grep -q '^<svg ' "$TMP/dogs.svg" && grep -q '</svg>' "$TMP/dogs.svg" && grep -q "top-1 agreement per layer: stories260K.bin vs stories260K-dogs.bin<" "$TMP/dogs.svg" &&
    grep -q '>layer</text>' "$TMP/dogs.svg" && grep -q 'top-1 agreement (% of neurons; axis from 0)' "$TMP/dogs.svg"; then ok
else fail "SVG has axes, labels and a title naming both checkpoints"; fi
expect_eq "$(grep -c '<rect x=.*<title>' "$TMP/dogs.svg")" 15 "one bar per matrix and layer"
expect_eq "$(grep -o '<title>up 0: [0-9.]*' "$TMP/dogs.svg" | grep -o '[0-9.]*$')" "91.28" "bar value: up layer 0 = 157/172"
if command -v python3 >/dev/null; then
    if python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$TMP/dogs.svg"; then ok; else fail "SVG is well-formed XML"; fi
fi
expect_exit 1 'cannot write the plot' "$NM" diff "$BIN" "$BIN" "${TOK[@]}" --plot "$TMP/no/such/dir.svg"

# ---- usage refusals -------------------------------------------------------------
expect_exit 2 'expected two checkpoints' "$NM" diff "$BIN" "${TOK[@]}"
expect_exit 2 'expected two checkpoints' "$NM" diff "$BIN" "$BIN" "$BIN" "${TOK[@]}"
expect_exit 2 'give exactly one' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --matrices up,down
expect_exit 2 'two different matrices' "$NM" diff "$BIN" "${TOK[@]}" --matrices up,up
expect_exit 2 'two matrices X,Y' "$NM" diff "$BIN" "${TOK[@]}" --matrices up
expect_exit 2 'matrix must be' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --matrix mlp
expect_exit 2 'format must be' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --format csv
expect_exit 2 'norm must be' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --norm l2
expect_exit 2 'top-k must be' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --top-k 0
expect_exit 2 'top-k must be at most 512' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --top-k 600
expect_exit 2 'limit must be' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --limit -1
expect_exit 2 'layers.*outside 0-4' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --layers 3-5
expect_exit 2 'unknown' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --bogus
expect_exit 2 'no such file' "$NM" diff "$BIN" "$TMP/none.bin" "${TOK[@]}"

# ---- one network in other formats and precisions ---------------------------------
GGUF=$M/stories260K/stories260K.gguf
HF=$M/stories260K-hf
expect_out '"top1_agreement":1,' "$NM" diff "$GGUF" "$HF" --matrix all --format json
if grep -q '"n_neurons":2580,"top1_same":2580,' "$TMP/out" && grep -q '"jaccard":1,"spearman":1' "$TMP/out"; then ok
else fail "GGUF vs HF F32: every neuron identical: $(head -c 300 "$TMP/out")"; fi
expect_out '^up +860 +860 +100\.00%' "$NM" diff "$BIN" "$GGUF" "${TOK[@]}"
# BF16 and Q8_0 move some neurons, not most (README: 2512 and 2488 of 2580)
for q in "$M/stories260K-hf-bf16-sharded" "$M/quant/stories260K-q8_0.gguf"; do
    "$NM" diff "$HF" "$q" --matrix all --format json >"$TMP/q.json" 2>/dev/null
    same=$(grep -o '^{[^[]*"top1_same":[0-9]*' "$TMP/q.json" | grep -o '[0-9]*$')
    if [ -n "$same" ] && [ "$same" -ge 2400 ] && [ "$same" -lt 2580 ]; then ok; else fail "$q: $same of 2580 keep their top-1"; fi
done
expect_exit 2 'differ in number of layers \(5 against 2\)' "$NM" diff "$HF" "$M/quant/synth256-f32.gguf"

finish
