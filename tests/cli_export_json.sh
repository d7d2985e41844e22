# tests/cli_export_json.sh — `export` gives back exactly what map printed;
# show, find and info as JSON documents (README, "JSON documents") carry the
# same numbers as the TSV / JSONL they sit beside.
source "$(dirname "$0")/lib.sh"
B=$M/stories260K
L2C=("$B/stories260K.bin" --tokenizer "$B/tok512.bin")

# ---- export: byte-identical to map's stdout ----------------------------------
for extra in "" "--prefilter --prob-tol inf" "--norm gain --top-k 3 --bottom-k 0"; do
    "$NM" map "${L2C[@]}" --matrix all $extra --format tsv >"$TMP/m.tsv" 2>/dev/null
    "$NM" map "${L2C[@]}" --matrix all $extra --format jsonl >"$TMP/m.jsonl" 2>/dev/null
    rm -f "$TMP/m.db"
    "$NM" map "${L2C[@]}" --matrix all $extra -o "$TMP/m.db" 2>/dev/null
    "$NM" export "$TMP/m.db" --format tsv >"$TMP/e.tsv"
    cmp -s "$TMP/m.tsv" "$TMP/e.tsv" && ok || fail "export --format tsv equals map's TSV ($extra)"
    "$NM" export "$TMP/m.db" --format jsonl >"$TMP/e.jsonl"
    cmp -s "$TMP/m.jsonl" "$TMP/e.jsonl" && ok || fail "export --format jsonl equals map's JSONL ($extra)"
done
expect_eq "$(wc -l <"$TMP/e.jsonl")" 2580 "every neuron of --matrix all"
"$NM" map "${L2C[@]}" --matrix down --layers 2-3 --neurons 5-9 --format tsv >"$TMP/p.tsv" 2>/dev/null
"$NM" map "${L2C[@]}" --matrix down --layers 2-3 --neurons 5-9 -o "$TMP/p.db" 2>/dev/null
expect_eq "$("$NM" export "$TMP/p.db" --format tsv | md5sum)" "$(md5sum <"$TMP/p.tsv")" "export of a partial range"
expect_exit 2 'format tsv or --format jsonl is required' "$NM" export "$TMP/p.db"
expect_exit 2 'not an atlas' "$NM" export "$B/stories260K.bin" --format tsv
expect_exit 2 'format must be tsv or jsonl' "$NM" export "$TMP/p.db" --format csv
expect_out '^usage: neuromap export' "$NM" export --help

# ---- show --format json: map's JSONL record plus the norm ---------------------
"$NM" map "${L2C[@]}" --matrix up --layers 3 --neurons 17 --format jsonl >"$TMP/r.jsonl" 2>/dev/null
"$NM" show "${L2C[@]}" 3:17 --format json >"$TMP/s.json" 2>/dev/null
rm -f "$TMP/f.db"; "$NM" map "${L2C[@]}" --matrix up -o "$TMP/f.db" 2>/dev/null
"$NM" show "$TMP/f.db" 3:17 --format json >"$TMP/sf.json"
expect_eq "$(python3 - "$TMP/r.jsonl" "$TMP/s.json" "$TMP/sf.json" <<'PY'
import json, sys
ref = json.loads(open(sys.argv[1]).readline())
show, from_atlas = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
ok = [show.pop("norm") == "full", show.pop("lse_bound") == 0, show == ref,
      [t["rank"] for t in ref["top"]] == list(range(1, 11)), len(ref["bottom"]) == 5,
      from_atlas.pop("norm") == "full", from_atlas.pop("lse_bound") == 0, from_atlas == ref]
print(ok)
PY
)" "[True, True, True, True, True, True, True, True]" "show --format json: map's record (model and atlas)"

# ---- find --format json: the TSV's rows -------------------------------------
"$NM" find "${L2C[@]}" " the" --matrix all --limit 7 --agreement --format tsv >"$TMP/f.tsv" 2>/dev/null
"$NM" find "${L2C[@]}" " the" --matrix all --limit 7 --agreement --format json >"$TMP/f.json" 2>/dev/null
expect_eq "$(python3 - "$TMP/f.tsv" "$TMP/f.json" <<'PY'
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
d = json.load(open(sys.argv[2]))
same = all([r[0], int(r[1]), int(r[2]), int(r[4]), r[5], r[6], r[7], r[8] == "1"] ==
           [n["matrix"], n["layer"], n["neuron"], n["rank"], n["top"]["token"], n["partner"]["matrix"],
            n["partner"]["top"]["token"], n["partner"]["agree"]] and abs(float(r[3]) - n["logit"]) < 1e-5
           for r, n in zip(rows, d["neurons"]))
print(len(rows), len(d["neurons"]), same, d["token"]["token"], d["source"], d["skipped_nonfinite"])
PY
)" "7 7 True  the model 0" "find --format json: the TSV's rows"
"$NM" find "$TMP/f.db" " the" --format json >"$TMP/fa.json" 2>/dev/null
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["source"], d["matrix"], len(d["neurons"]) > 0, all(n["matrix"] == "up" for n in d["neurons"]))' "$TMP/fa.json")" \
    "atlas up True True" "find --format json on an atlas"

# ---- info --format json: one document ---------------------------------------
expect_eq "$("$NM" info "${L2C[@]}" --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["hidden_size"], d["intermediate_size"], d["vocab_size"])')" \
    "64 172 512" "info --format json"
finish
