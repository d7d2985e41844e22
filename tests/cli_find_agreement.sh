# cli_find_agreement.sh — `find --agreement`: what each listed neuron reads
# (up row) against what it writes (down column), consistent with `show` and
# with `diff --matrices up,down`.
source "$(dirname "$0")/lib.sh"
B=$M/stories260K
L2C=("$B/stories260K.bin" --tokenizer "$B/tok512.bin")

expect_out $'^up\t0\t104\t[0-9.]+\t1\tst\tdown\tst\t1$' "$NM" find "${L2C[@]}" "st" --matrix up --agreement --format tsv --limit 5
expect_out $'^matrix\tlayer\tneuron\tlogit\trank\ttop_token\tpartner\tpartner_top\tagree$' "$NM" find "${L2C[@]}" " named" --matrix down --agreement --format tsv --limit 3

# Every partner_top equals the top-1 token `show` gives for the partner side.
"$NM" find "${L2C[@]}" " named" --matrix all --agreement --format tsv --limit 8 >"$TMP/f" 2>/dev/null
rows=0
while IFS=$'\t' read -r matrix layer neuron logit rank top partner ptop agree; do
    [ "$matrix" = matrix ] && continue
    rows=$((rows + 1))
    want=$("$NM" show "${L2C[@]}" "$layer:$neuron" --matrix "$partner" --format tsv --top-k 1 2>/dev/null | awk -F'\t' 'NR==2{print $6}')
    expect_eq "$ptop" "$want" "partner top of $matrix $layer:$neuron"
    expect_eq "$agree" "$([ "$ptop" = "$top" ] && echo 1 || echo 0)" "agree flag of $matrix $layer:$neuron"
done <"$TMP/f"
expect_eq "$rows" 8 "rows listed"

# 0:132 reads and writes "ou" (diff --matrices up,down lists it): find marks it.
expect_exit 0 "" "$NM" find "${L2C[@]}" "ou" --matrix up --agreement --format tsv --limit 3
if grep -qP '^up\t0\t132\t.*\tou\tdown\tou\t1$' "$TMP/out"; then ok; else fail "find ou --agreement lacks 0:132 reading and writing ou: $(cat "$TMP/out")"; fi
"$NM" map "${L2C[@]}" --layers 0 -o "$TMP/a.atlas.db" 2>/dev/null
expect_exit 2 "needs the model" "$NM" find "$TMP/a.atlas.db" "ou" --agreement
finish
