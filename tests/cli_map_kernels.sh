# tests/cli_map_kernels.sh — map's --kernel and --prefilter (issue 7): the
# kernels agree, the prefilter gives the native kernel's token ids and logits
# bit for bit (its probabilities within the bound it reports), planted
# neurons are found through it, and bad combinations are refused.
source "$(dirname "$0")/lib.sh"
BIN=$M/stories260K/stories260K.bin
TOK=(--tokenizer "$M/stories260K/tok512.bin")
BF16=$M/stories260K-hf-bf16-sharded

expect_out '--prefilter' "$NM" map --help
expect_out '--kernel' "$NM" map --help

for model in "$BIN" "$BF16"; do
    tok=(); [ "$model" = "$BIN" ] && tok=("${TOK[@]}")
    run() { "$NM" map "$model" "${tok[@]}" --matrix all --format tsv "$@" 2>"$TMP/err"; }
    run --kernel native >"$TMP/native.tsv"
    run --kernel openblas >"$TMP/openblas.tsv"
    run --prefilter --prob-tol inf >"$TMP/bounds.tsv"
    grep -q 'prefilter: [0-9.]* logits per neuron computed exactly after the BF16 pass; 0 of 2580 normalisers' "$TMP/err" && ok ||
        fail "$model: prefilter report: $(cat "$TMP/err")"
    run --prefilter >"$TMP/pf.tsv"
    # at 1e-4 no bound here can be met (each is known before the BF16 pass): mapped exactly, without it
    grep -q 'prefilter: \([0-9]*\) of \1 normalisers computed exactly (bound > 0.0001), \1 of them without the BF16 pass' "$TMP/err" &&
        ok || fail "$model: prefilter report: $(cat "$TMP/err")"
    run --prefilter --prob-tol 0 >"$TMP/pf0.tsv"
    grep -q '\([0-9]*\) of \1 normalisers computed exactly' "$TMP/err" && ok || fail "$model: --prob-tol 0: $(cat "$TMP/err")"
    # past 1024 neurons that all needed the exact pass, map stops the BF16 pass
    grep -q 'the other 1548 neurons were mapped exactly' "$TMP/err" && ok || fail "$model: prefilter turned off: $(cat "$TMP/err")"
    expect_eq "$(wc -l <"$TMP/native.tsv")" $((1 + 2580 * 15)) "$model: rows"
    # token ids agree between the kernels, except where two tokens' logits tie
    # to within the last bits: OpenBLAS sums in another order (its kernel
    # depends on the CPU: on Sapphire Rapids it swaps 5 such pairs here), so
    # a row whose id differs must hold a logit within 2e-6 relative of
    # native's at that rank.
    expect_eq "$(paste "$TMP/openblas.tsv" "$TMP/native.tsv" | awk -F'\t' 'NR > 1 && $5 != $13 {
        d = $7 - $15; if (d < 0) d = -d; s = $15 < 0 ? -$15 : $15; if (d > 2e-6 * (s > 1 ? s : 1)) bad++ }
        $1 != $9 || $2 != $10 || $3 != $11 || $4 != $12 { bad++ } END { print bad + 0 }')" 0 "$model: openblas ids = native ids (but near-ties)"
    # the prefilter: ids and logits exactly the native kernel's
    for f in bounds pf pf0; do
        expect_eq "$(cut -f1-7 "$TMP/$f.tsv" | md5sum)" "$(cut -f1-7 "$TMP/native.tsv" | md5sum)" "$model: $f ids and logits = native"
    done
    # with every normaliser exact, everything is the same
    expect_eq "$(md5sum <"$TMP/pf0.tsv")" "$(md5sum <"$TMP/native.tsv")" "$model: --prob-tol 0 = native, probabilities too"
done

# jsonl reports each kept bound, and the probabilities respect it
"$NM" map "$BIN" "${TOK[@]}" --format jsonl --prefilter --prob-tol inf --layers 2 >"$TMP/b.jsonl" 2>/dev/null
"$NM" map "$BIN" "${TOK[@]}" --format jsonl --kernel native --layers 2 >"$TMP/n.jsonl" 2>/dev/null
expect_eq "$(grep -c '"lse_bound":' "$TMP/b.jsonl")" 172 "every neuron's bound in jsonl"
expect_eq "$(grep -c '"lse_bound":' "$TMP/n.jsonl")" 0 "no bound without the prefilter"
/usr/bin/python3 - "$TMP/b.jsonl" "$TMP/n.jsonl" >"$TMP/py.out" 2>&1 <<'PY'
import json, math, sys
bad = 0
for b, n in zip(open(sys.argv[1]), open(sys.argv[2])):
    b, n = json.loads(b), json.loads(n)
    if abs(b["lse"] - n["lse"]) > b["lse_bound"]: bad += 1
    for tb, tn in zip(b["top"] + b["bottom"], n["top"] + n["bottom"]):
        if tb["token_id"] != tn["token_id"] or abs(math.log(tb["prob"] / tn["prob"])) > b["lse_bound"] + 1e-6: bad += 1
print(bad)
PY
expect_eq "$(cat "$TMP/py.out")" 0 "lse and probabilities within each neuron's bound"

# planted neurons are found through the prefilter (HF BF16 with the real Llama 3.1 tokenizer)
"$NM" synth "$TMP/p-l3" --preset tiny --dtype bf16 --tokenizer "$SHARED/tokenizers/llama-3.1" --plant "1:42= dog" --plant "0:7= California" >/dev/null 2>&1
"$NM" map "$TMP/p-l3" --matrix up --format tsv --top-k 1 --bottom-k 0 --prefilter >"$TMP/pl.tsv" 2>/dev/null
expect_eq "$(awk -F'\t' '$2 == 1 && $3 == 42 { print $6 }' "$TMP/pl.tsv")" " dog" "planted 1:42 through the prefilter"
expect_eq "$(awk -F'\t' '$2 == 0 && $3 == 7 { print $6 }' "$TMP/pl.tsv")" " California" "planted 0:7 through the prefilter"

# refusals
expect_exit 2 'kernel must be' "$NM" map "$BIN" "${TOK[@]}" --format tsv --kernel cuda
expect_exit 2 'add --prefilter' "$NM" map "$BIN" "${TOK[@]}" --format tsv --prob-tol 1e-3
expect_exit 2 'prob-tol must be' "$NM" map "$BIN" "${TOK[@]}" --format tsv --prefilter --prob-tol -1
expect_exit 2 'prob-tol must be' "$NM" map "$BIN" "${TOK[@]}" --format tsv --prefilter --prob-tol x
expect_exit 2 'cannot be combined' "$NM" map "$BIN" "${TOK[@]}" --format tsv --prefilter --kernel openblas

finish
