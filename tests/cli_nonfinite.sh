# tests/cli_nonfinite.sh — a NaN or an infinity in a neuron's weights
# (docs/RELIABILITY.md, "Non-finite weights"): the neuron is reported as
# non-finite, never given another neuron's tokens; every other neuron is
# exactly what the clean model gives; the forward pass stops naming the layer.
source "$(dirname "$0")/lib.sh"
B=$M/stories260K
TOK=(--tokenizer "$B/tok512.bin")

# poison SRC DST MATRIX LAYER NEURON VALUE: a copy of the llama2.c .bin with
# one weight of that neuron's vector replaced (element 3 of an up/gate row,
# row 3 of a down column). Layout (models/README.md): 7 int32, then float32
# embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1 (gate), w2 (down), w3 (up).
poison() {
    python3 - "$@" <<'PY'
import struct, sys
src, dst, matrix, layer, neuron, value = sys.argv[1:7]
layer, neuron, value = int(layer), int(neuron), float(value)
data = bytearray(open(src, "rb").read())
dim, hidden, L, heads, kv, vocab, seq = struct.unpack_from("7i", data, 0)
kv_dim = dim * kv // heads
off = abs(vocab) * dim + L * dim + L * dim * dim + 2 * L * kv_dim * dim + L * dim * dim + L * dim
w1 = off; w2 = w1 + L * hidden * dim; w3 = w2 + L * dim * hidden
if matrix == "up":     at = w3 + (layer * hidden + neuron) * dim + 3
elif matrix == "gate": at = w1 + (layer * hidden + neuron) * dim + 3
elif matrix == "emb":  at = neuron * dim + 3  # token `neuron`'s row: the (tied) LM head too
else:                  at = w2 + layer * dim * hidden + 3 * hidden + neuron
struct.pack_into("<f", data, 28 + 4 * at, value)
open(dst, "wb").write(data)
PY
}
poison "$B/stories260K.bin" "$TMP/nan.bin" up 1 5 nan
poison "$TMP/nan.bin" "$TMP/bad.bin" down 2 7 inf
cmp -s "$B/stories260K.bin" "$TMP/nan.bin" && fail "the poisoned copy differs" || ok

# ---- map: TSV and JSONL ------------------------------------------------------
"$NM" map "$B/stories260K.bin" "${TOK[@]}" --matrix all --format tsv >"$TMP/clean.tsv" 2>/dev/null
"$NM" map "$TMP/bad.bin" "${TOK[@]}" --matrix all --format tsv >"$TMP/bad.tsv" 2>"$TMP/bad.err"
expect_eq "$?" 0 "map of a model with non-finite neurons exits 0"
expect_eq "$(awk -F'\t' '($1=="up" && $2==1 && $3==5) || ($1=="down" && $2==2 && $3==7)' "$TMP/bad.tsv" | wc -l)" 0 \
    "the non-finite neurons get no rows"
grep -v -P '^(up\t1\t5|down\t2\t7)\t' "$TMP/clean.tsv" >"$TMP/clean-others.tsv"
cmp -s "$TMP/clean-others.tsv" "$TMP/bad.tsv" && ok || fail "every other neuron's rows equal the clean model's"
grep -Eq '^map: warning: 2 neurons have non-finite weights .*: up 1:5, down 2:7' "$TMP/bad.err" && ok ||
    fail "map warns, naming how many and which: $(cat "$TMP/bad.err")"
expect_eq "$(tail -n 1 "$TMP/bad.err" | grep -c 'non-finite')" 1 "the warning is the last line"

# the prefilter's path, too
"$NM" map "$B/stories260K.bin" "${TOK[@]}" --matrix all --format tsv --prefilter >"$TMP/cleanp.tsv" 2>/dev/null
"$NM" map "$TMP/bad.bin" "${TOK[@]}" --matrix all --format tsv --prefilter >"$TMP/badp.tsv" 2>"$TMP/badp.err"
cmp -s <(grep -v -P '^(up\t1\t5|down\t2\t7)\t' "$TMP/cleanp.tsv") "$TMP/badp.tsv" && ok || fail "--prefilter: the other rows equal the clean model's"
grep -q 'warning: 2 neurons have non-finite' "$TMP/badp.err" && ok || fail "--prefilter: the warning"

"$NM" map "$B/stories260K.bin" "${TOK[@]}" --matrix all --format jsonl >"$TMP/clean.jsonl" 2>/dev/null
"$NM" map "$TMP/bad.bin" "${TOK[@]}" --matrix all --format jsonl >"$TMP/bad.jsonl" 2>/dev/null
expect_eq "$(grep -c nonfinite "$TMP/bad.jsonl")" 2 "two non-finite records"
grep -qx '{"matrix":"up","layer":1,"neuron":5,"nonfinite":true}' "$TMP/bad.jsonl" && ok || fail "the JSONL record of up 1:5"
expect_eq "$(diff <(grep -v -e '^{"matrix":"up","layer":1,"neuron":5,' -e '^{"matrix":"down","layer":2,"neuron":7,' "$TMP/clean.jsonl") \
                  <(grep -v nonfinite "$TMP/bad.jsonl") | wc -l)" 0 "the other JSONL lines equal the clean model's"
expect_eq "$(wc -l <"$TMP/bad.jsonl")" "$(wc -l <"$TMP/clean.jsonl")" "one line per neuron, non-finite ones included"

# ---- the atlas, show ---------------------------------------------------------
expect_exit 0 'non-finite' "$NM" map "$TMP/bad.bin" "${TOK[@]}" --matrix all -o "$TMP/bad.db"
expect_eq "$(python3 -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); print(d.execute("SELECT matrix,layer,neuron FROM neurons WHERE nonfinite").fetchall(), d.execute("SELECT count(*) FROM entries WHERE matrix=\"up\" AND layer=1 AND neuron=5").fetchone()[0])' "$TMP/bad.db")" \
    "[('down', 2, 7), ('up', 1, 5)] 0" "the atlas flags the neurons and stores no tokens for them"
# killed after layer 1 of up, resumed: the warning still names both
NEUROMAP_TEST_ABORT_AFTER=344 "$NM" map "$TMP/bad.bin" "${TOK[@]}" --matrix all -o "$TMP/k.db" >/dev/null 2>&1
expect_exit 0 'warning: 2 neurons have non-finite weights .*: up 1:5, down 2:7$' "$NM" map "$TMP/bad.bin" "${TOK[@]}" --matrix all -o "$TMP/k.db" --resume
expect_out 'non-finite weights' "$NM" show "$TMP/bad.db" 1:5
expect_out 'non-finite weights' "$NM" show "$TMP/bad.bin" "${TOK[@]}" 1:5
expect_out 'non-finite weights' "$NM" show "$TMP/bad.bin" "${TOK[@]}" 2:7 --matrix down
expect_out '^\{"matrix":"up","layer":1,"neuron":5,"nonfinite":true,"norm":"full"\}$' "$NM" show "$TMP/bad.db" 1:5 --format json
expect_eq "$("$NM" show "$TMP/bad.bin" "${TOK[@]}" 1:5 --format tsv 2>/dev/null | wc -l)" 1 "show --format tsv: the header only"
# a neighbour is untouched
expect_eq "$("$NM" show "$TMP/bad.db" 1:6 --format tsv)" "$("$NM" show "$B/stories260K.bin" "${TOK[@]}" 1:6 --format tsv 2>/dev/null)" "1:6 as in the clean model"

# ---- find: skipped and counted -----------------------------------------------
"$NM" find "$B/stories260K.bin" "${TOK[@]}" " the" --matrix all --limit 40 --format tsv >"$TMP/fc" 2>/dev/null
"$NM" find "$TMP/bad.bin" "${TOK[@]}" " the" --matrix all --limit 38 --format tsv >"$TMP/fb" 2>"$TMP/fb.err"
expect_eq "$?" 0 "find exits 0"
grep -q 'skipped 2 neurons with non-finite weights' "$TMP/fb.err" && ok || fail "find says how many it skipped: $(cat "$TMP/fb.err")"
expect_eq "$(grep -v -P '^(up\t1\t5|down\t2\t7)\t' "$TMP/fc" | head -n 39)" "$(cat "$TMP/fb")" "find lists the clean model's neurons, less the non-finite ones"

expect_exit 0 'skipped 2 neurons with non-finite weights' "$NM" find "$TMP/bad.db" " the" --matrix all
expect_exit 0 'skipped 1 neuron with non-finite weights' "$NM" find "$TMP/bad.db" " the" --matrix up

# ---- diff: counted apart, never as agreement ---------------------------------
"$NM" diff "$B/stories260K.bin" "$TMP/nan.bin" "${TOK[@]}" --format json >"$TMP/d.json" 2>/dev/null
expect_eq "$?" 0 "diff exits 0"
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["n_neurons"], d["top1_same"], d["nonfinite"])' "$TMP/d.json")" \
    "859 859 1" "diff: 859 neurons compared (all the same), 1 non-finite counted apart"
expect_out 'non-finite' "$NM" diff "$B/stories260K.bin" "$TMP/nan.bin" "${TOK[@]}"
"$NM" map "$B/stories260K.bin" "${TOK[@]}" --matrix all -o "$TMP/clean.db" 2>/dev/null
"$NM" diff "$TMP/clean.db" "$TMP/bad.db" --matrix all --format json >"$TMP/da.json" 2>/dev/null
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["n_neurons"], d["top1_same"], d["nonfinite"])' "$TMP/da.json")" \
    "2578 2578 2" "diff of two atlases: the flagged neurons counted apart"

# ---- the forward pass stops, naming the layer ---------------------------------
expect_exit 1 'layer 1: .*non-finite' "$NM" generate "$TMP/nan.bin" "${TOK[@]}" -n 5
expect_exit 1 'layer 1: .*non-finite' "$NM" probe "$TMP/nan.bin" "${TOK[@]}" -p "Once upon" --target " a time"
expect_exit 0 '' "$NM" generate "$B/stories260K.bin" "${TOK[@]}" -n 5

# ---- a NaN in a row of the (tied) head: every neuron's logits are non-finite
poison "$B/stories260K.bin" "$TMP/head.bin" emb 0 300 nan
expect_exit 0 'warning: 860 neurons have non-finite weights .*: up 0:0, up 0:1, up 0:2, up 0:3, up 0:4, \.\.\.$' \
    "$NM" map "$TMP/head.bin" "${TOK[@]}" --format tsv
expect_eq "$(wc -l <"$TMP/out")" 1 "no rows at all, the header only"
expect_exit 1 'LM head gave non-finite logits' "$NM" generate "$TMP/head.bin" "${TOK[@]}" -n 2
finish
