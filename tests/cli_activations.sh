# cli_activations.sh — activations, show --examples, trace, agreement on stories260K.
source "$(dirname "$0")/lib.sh"

B=$M/stories260K/stories260K.bin
TOK=$M/stories260K/tok512.bin
head -n 40 "$SHARED/corpora/stories260K-samples.txt" >"$TMP/c.txt"

# The act tables as text: equal dumps, equal atlases (meta.created aside).
dump() { sqlite3 -batch "$1" "select * from act_neurons; select * from act_examples; select * from act_tokens; select * from act_docs; select * from act_meta order by key"; }
run() { "$NM" activations "$B" --tokenizer "$TOK" --corpus "$TMP/c.txt" --window 64 "$@"; }

# ---- a run -----------------------------------------------------------------------
expect_exit 0 "40 documents, [0-9]+ tokens, 2 passes" run -o "$TMP/a.db" --threads 1
# (--threads 1 and 2 give the same atlas: tests/cli_mpi_activations.sh)

# (killed in pass 1 or 2 and resumed = uninterrupted: tests/cli_mpi_activations.sh,
# on fewer documents, next to the resumes of shards and ranks)

# ---- counts by hand: every counted token is a document token, BOS never ----------
total=$(sqlite3 "$TMP/a.db" "select sum(count) from act_tokens")
per=$(sqlite3 "$TMP/a.db" "select min(count), max(count) from act_neurons")
expect_eq "$per" "$total|$total" "every neuron counts every corpus token"
bos=$(sqlite3 "$TMP/a.db" "select count(*) from act_examples where pos = 0 or token_id = 1")
expect_eq "$bos" "0" "no example at BOS"
want=0
while IFS= read -r line; do
    n=$("$NM" tokenize "$B" --tokenizer "$TOK" --no-bos --format ids -- "$line" | wc -w)
    want=$((want + n))
done <"$TMP/c.txt"
expect_eq "$total" "$want" "counted tokens = the documents' tokens without BOS"
expect_eq "$(sqlite3 "$TMP/a.db" "select max(window) > 0, max(pos) from act_examples")" "1|63" "windows of 64: pos 1..63, several windows"

# ---- --max-tokens, --layers ---------------------------------------------------------
expect_exit 0 "" run -o "$TMP/m.db" --max-tokens 500 --layers 1-2
expect_eq "$(sqlite3 "$TMP/m.db" "select min(count), max(count), min(layer), max(layer), count(*) from act_neurons")" "500|500|1|2|344" \
    "--max-tokens 500 --layers 1-2"

# ---- adding to a map atlas keeps the map -----------------------------------------------
"$NM" map "$B" --tokenizer "$TOK" --layers 0 -o "$TMP/map.db" >/dev/null 2>&1
before=$(sqlite3 "$TMP/map.db" "select * from entries" | md5sum)
expect_exit 0 "" run -o "$TMP/map.db"
expect_eq "$(sqlite3 "$TMP/map.db" "select * from entries" | md5sum)" "$before" "the map's entries are unchanged"
expect_eq "$(dump "$TMP/map.db" | grep -av corpus_path | md5sum)" "$(dump "$TMP/a.db" | grep -av corpus_path | md5sum)" "activations added to a map = a new atlas's"
expect_out "up 0:140" "$NM" show "$TMP/map.db" 0:140
expect_out 'map, up row/column \(norm full\), top: "' "$NM" show "$TMP/map.db" 0:140 --examples
expect_eq "$("$NM" show "$TMP/map.db" 0:140 --examples --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["weights"]["up"]["top"]), "activations" in d)')" "10 True" \
    "show --examples --format json: the map's lists next to the activations"
expect_exit 2 "holds activations already" run -o "$TMP/map.db"

# ---- show --examples ------------------------------------------------------------------
expect_out 'writes \(down column\): +" named"' "$NM" show "$TMP/a.db" 0:140 --examples
expect_out '\[\[ named\]\]' "$NM" show "$TMP/a.db" 0:140 --examples --around 3
"$NM" show "$TMP/a.db" 0:140 --examples --format json >"$TMP/s.json"
expect_eq "$(python3 -c '
import json,sys
d=json.load(open(sys.argv[1])); a=d["activations"]
t=a["top"]
ok = a["count"] > 0 and len(t) == 20 and all(x["token"] == " named" for x in t[:5]) and len(a["histogram"]) == 32
ok = ok and sum(b["count"] for b in a["histogram"]) == a["count"] and len(a["quantiles"]) == 3
ok = ok and all(t[i]["act"] >= t[i+1]["act"] for i in range(19)) and "[[ named]]" in t[0]["context"]
ok = ok and abs(sum(a["sign_cases"].values()) - 1) < 1e-9 and d["corpus"]["status"] == "ok"
print(ok)' "$TMP/s.json")" "True" "show --examples --format json"
cp "$TMP/c.txt" "$TMP/moved.txt"
"$NM" activations "$B" --tokenizer "$TOK" --corpus "$TMP/moved.txt" --max-tokens 300 -o "$TMP/mv.db" 2>/dev/null
rm "$TMP/moved.txt"
expect_out "moved since the run" "$NM" show "$TMP/mv.db" 0:140 --examples
cp "$TMP/c.txt" "$TMP/changed.txt"
"$NM" activations "$B" --tokenizer "$TOK" --corpus "$TMP/changed.txt" --max-tokens 300 -o "$TMP/ch.db" 2>/dev/null
echo "One more story." >>"$TMP/changed.txt"
expect_out "changed since the run" "$NM" show "$TMP/ch.db" 0:140 --examples
expect_out '"status":[[:space:]]*"changed"' "$NM" show "$TMP/ch.db" 0:140 --examples --format json
expect_exit 2 "reads an atlas" "$NM" show "$TMP/mv.db.nope" 0:140 --examples
"$NM" map "$B" --tokenizer "$TOK" --layers 0 -o "$TMP/maponly.db" >/dev/null 2>&1
expect_exit 2 "holds no activations" "$NM" show "$TMP/maponly.db" 0:140 --examples
expect_exit 2 "holds activations of layers 1-2" "$NM" show "$TMP/m.db" 0:140 --examples

# ---- agreement ---------------------------------------------------------------------------
expect_out "^ +all +860 " "$NM" agreement "$TMP/a.db"
expect_out "^0	140	395	 named" "$NM" agreement "$TMP/a.db" --neurons --row gate
expect_exit 0 "" "$NM" agreement "$TMP/a.db" --format json --through embed

# ---- trace ----------------------------------------------------------------------------------
"$NM" trace "$B" --tokenizer "$TOK" -p "There was a girl named Lily." --limit 4 --format json >"$TMP/t.json"
expect_eq "$(python3 -c '
import json,sys
t=json.load(open(sys.argv[1]))["tokens"]
print(t[0]["pos"] == 0 and t[0]["id"] == 1 and all(len(x["top"]) == 4 for x in t) and
      all(x["top"][i]["act"] >= x["top"][i+1]["act"] for x in t for i in range(3)))' "$TMP/t.json")" "True" "trace --format json"
expect_out '" named" +0:140 ' "$NM" trace "$B" --tokenizer "$TOK" -p "There was a girl named Lily." --layers 0 --limit 1

# ---- bad input -----------------------------------------------------------------------------
expect_exit 2 "--corpus FILE is required" "$NM" activations "$B" --tokenizer "$TOK"
expect_exit 2 "\.txt file .* or \.jsonl" "$NM" activations "$B" --tokenizer "$TOK" --corpus "$TMP/a.db"
expect_exit 2 "exceeds the model's context" run --window 4096 -o "$TMP/x.db"
echo '{"txt": "no text field"}' >"$TMP/bad.jsonl"
expect_exit 2 "bad.jsonl:1: not a JSON object with a string \"text\"" "$NM" activations "$B" --tokenizer "$TOK" --corpus "$TMP/bad.jsonl" -o "$TMP/x.db"
expect_eq "$(ls "$TMP" | grep -c 'x.db')" "0" "a failed run leaves nothing"
printf '{"text": "Once upon a time, there was a girl named Lily."}\n{"text": "She loved to play."}\n' >"$TMP/ok.jsonl"
printf 'Once upon a time, there was a girl named Lily.\nShe loved to play.\n' >"$TMP/ok.txt"
expect_exit 0 "" "$NM" activations "$B" --tokenizer "$TOK" --corpus "$TMP/ok.jsonl" -o "$TMP/j.db"
expect_exit 0 "" "$NM" activations "$B" --tokenizer "$TOK" --corpus "$TMP/ok.txt" -o "$TMP/t.db"
expect_eq "$(sqlite3 "$TMP/j.db" "select * from act_neurons" | md5sum)" "$(sqlite3 "$TMP/t.db" "select * from act_neurons" | md5sum)" ".jsonl = .txt"
expect_exit 2 "--limit" "$NM" trace "$B" --tokenizer "$TOK" -p "hi" --limit 0
expect_exit 2 "agreement: unknown option '--bogus' \\(see 'neuromap agreement --help'\\)" "$NM" agreement "$TMP/a.db" --bogus

finish
