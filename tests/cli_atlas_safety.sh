# tests/cli_atlas_safety.sh — output safety of `map` (docs/RELIABILITY.md,
# "Output safety"): a full disk or a kill leaves the previous atlas intact,
# --resume finishes an interrupted run with the rows of an uninterrupted one,
# and a resume with another model or options is refused.
source "$(dirname "$0")/lib.sh"
BIN=$M/stories260K/stories260K.bin
TOK=(--tokenizer "$M/stories260K/tok512.bin")
MAP=("$NM" map "$BIN" "${TOK[@]}" --matrix all --top-k 4 --bottom-k 2)

# rows FILE: every entry and neuron row, sorted, so that order does not matter.
rows() {
    python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for r in sorted(db.execute("SELECT * FROM entries")): print(*r)
for r in sorted(db.execute("SELECT * FROM neurons")): print(*r)
PY
}

# ---- the reference: one uninterrupted run -----------------------------------
expect_exit 0 '' "${MAP[@]}" -o "$TMP/ref.db"
rows "$TMP/ref.db" >"$TMP/ref.rows"
expect_eq "$(wc -l <"$TMP/ref.rows")" $((3 * 5 * 172 * 7)) "reference: 3 matrices x 5 layers x 172 neurons x (6 entries + 1 neuron row)"
expect_eq "$(ls "$TMP" | grep db)" "ref.db" "no partial or journal left after a complete run"

# ---- (4) no overwrite without --force; --force overwrites ---------------------
cp "$TMP/ref.db" "$TMP/a.db"
expect_exit 2 'already exists.*--force' "${MAP[@]}" -o "$TMP/a.db" --norm none
cmp -s "$TMP/ref.db" "$TMP/a.db" && ok || fail "a refused map left the atlas unchanged"
expect_exit 0 '' "${MAP[@]}" -o "$TMP/a.db" --norm none --force
cmp -s "$TMP/ref.db" "$TMP/a.db" && fail "--force replaced the atlas" || ok

# ---- (1) full disk: EFBIG under ulimit -f -----------------------------------
cp "$TMP/ref.db" "$TMP/full.db"
limit=$(( $(stat -c %s "$TMP/ref.db") / 1024 / 2 ))  # KiB: half an atlas
( trap '' XFSZ; ulimit -f "$limit"; exec "${MAP[@]}" -o "$TMP/full.db" --force ) >"$TMP/out" 2>"$TMP/err"
expect_eq "$?" 1 "a full disk is exit 1"
expect_eq "$(grep -c '^neuromap: ' "$TMP/err")" 1 "one message: $(cat "$TMP/err")"
grep -Eq "full.db: .*(full|I/O|large)" "$TMP/err" && ok || fail "the message names the atlas and the failure: $(cat "$TMP/err")"
cmp -s "$TMP/ref.db" "$TMP/full.db" && ok || fail "the previous atlas is byte-identical after a full disk"
expect_eq "$(ls "$TMP" | grep '^full' | tr '\n' ' ')" "full.db full.db.partial " "only the resumable partial beside it"
# without --resume the partial is an error; with it (space again) the run completes
cp "$TMP/full.db.partial" "$TMP/full2.db.partial"
expect_exit 2 'interrupted map left .*full2.db.partial.*--resume' "${MAP[@]}" -o "$TMP/full2.db"
rm -f "$TMP/full2.db.partial"
expect_exit 0 'resumed' "${MAP[@]}" -o "$TMP/full.db" --force --resume
rows "$TMP/full.db" >"$TMP/full.rows"
cmp -s "$TMP/ref.rows" "$TMP/full.rows" && ok || fail "after a full disk, --resume gives the rows of an uninterrupted run"
expect_eq "$(ls "$TMP" | grep -c '^full.db.')" 0 "no partial left after the resumed run"

# ---- (2) kill: the test-only hook dies by SIGKILL after 3 committed chunks (layers of up) ----
NEUROMAP_TEST_ABORT_AFTER=516 "${MAP[@]}" -o "$TMP/k.db" >/dev/null 2>&1
expect_eq "$?" 137 "the hook kills map (SIGKILL)"
[ ! -e "$TMP/k.db" ] && ok || fail "no atlas under the final name after a kill"
[ -s "$TMP/k.db.partial" ] && ok || fail "the kill leaves a partial atlas"
stored=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM neurons").fetchone()[0])' "$TMP/k.db.partial")
expect_eq "$stored" 516 "the partial holds the committed chunks"
# ---- (3) resume with another model or options: exit 2 naming the option ------
expect_exit 2 'cannot resume: --norm differs' "${MAP[@]}" -o "$TMP/k.db" --resume --norm gain
expect_exit 2 'cannot resume: --top-k differs' "$NM" map "$BIN" "${TOK[@]}" --matrix all --top-k 5 --bottom-k 2 -o "$TMP/k.db" --resume
expect_exit 2 'cannot resume: --matrix differs' "$NM" map "$BIN" "${TOK[@]}" --matrix up --top-k 4 --bottom-k 2 -o "$TMP/k.db" --resume
expect_exit 2 'cannot resume: --layers differs' "${MAP[@]}" -o "$TMP/k.db" --resume --layers 0-3
expect_exit 2 'cannot resume: MODEL' "$NM" map "$M/stories260K/stories260K.gguf" --matrix all --top-k 4 --bottom-k 2 -o "$TMP/k.db" --resume
# the content identity: the fine-tune has the base's layout (same config and
# tensor headers) but other weights; a resume with it would mix two models
DOGS=$M/stories260K-dogs/stories260K-dogs.bin
expect_exit 2 "cannot resume: MODEL \(its weights.*differs: the partial was mapped from $BIN" \
    "$NM" map "$DOGS" "${TOK[@]}" --matrix all --top-k 4 --bottom-k 2 -o "$TMP/k.db" --resume
# every option that changes a stored number is recorded and checked
expect_exit 2 'cannot resume: --kernel differs' "${MAP[@]}" -o "$TMP/k.db" --resume --kernel openblas
expect_exit 2 'cannot resume: --prefilter differs' "${MAP[@]}" -o "$TMP/k.db" --resume --prefilter
expect_exit 2 'cannot resume: --threads differs' "${MAP[@]}" -o "$TMP/k.db" --resume --threads 7
expect_exit 2 'interrupted map left.*--resume' "${MAP[@]}" -o "$TMP/k.db"
expect_exit 0 'resumed: 516 neurons' "${MAP[@]}" -o "$TMP/k.db" --resume
rows "$TMP/k.db" >"$TMP/k.rows"
cmp -s "$TMP/ref.rows" "$TMP/k.rows" && ok || fail "killed + --resume gives the rows of an uninterrupted run"
expect_eq "$(ls "$TMP" | grep -c '^k.db.')" 0 "no partial left after the resumed run"
# --resume with nothing to resume is a plain run
expect_exit 0 '' "${MAP[@]}" -o "$TMP/r.db" --resume
cmp -s "$TMP/ref.rows" <(rows "$TMP/r.db") && ok || fail "--resume without a partial maps everything"

# ---- HF: stories260K-hf and stories260K-dogs/hf share a layout identity, not a content one
NEUROMAP_TEST_ABORT_AFTER=172 "$NM" map "$M/stories260K-hf" -o "$TMP/h.db" >/dev/null 2>&1
expect_eq "$?" 137 "the hook kills the HF map"
expect_exit 2 'cannot resume: MODEL \(its weights' "$NM" map "$M/stories260K-dogs/hf" -o "$TMP/h.db" --resume
"$NM" diff "$M/stories260K-hf" "$M/stories260K-dogs/hf" --layers 0 --format json >"$TMP/hd.json" 2>/dev/null
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); a,b=d["a_identity"],d["b_identity"]; print(a["layout"]==b["layout"], a["content"]!=b["content"])' "$TMP/hd.json")" \
    "True True" "diff: same layout identity, different content identities"
expect_out '^identity A: content [0-9a-f]{16}, layout [0-9a-f]{16}$' "$NM" diff "$M/stories260K-hf" "$M/stories260K-dogs/hf" --layers 0
expect_exit 0 'resumed: 172 neurons' "$NM" map "$M/stories260K-hf" -o "$TMP/h.db" --resume

# ---- the prefilter's options and bounds are recorded ------------------------
# (JSONL prints 15 significant digits when cJSON deems them enough: compared to 4e-16 relative)
PF=("$NM" map "$BIN" "${TOK[@]}" --prefilter --prob-tol inf --top-k 4 --bottom-k 2)
NEUROMAP_TEST_ABORT_AFTER=172 "${PF[@]}" -o "$TMP/p.db" >/dev/null 2>&1
expect_exit 2 "cannot resume: --prob-tol differs \(partial has 'inf', this run '0.001'" "${PF[@]}" -o "$TMP/p.db" --resume --prob-tol 1e-3
expect_exit 0 'resumed' "${PF[@]}" -o "$TMP/p.db" --resume
"${PF[@]}" --format jsonl >"$TMP/p.jsonl" 2>/dev/null
expect_eq "$(python3 - "$TMP/p.db" "$TMP/p.jsonl" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
stored = {(m, l, n): b for m, l, n, b in db.execute("SELECT matrix, layer, neuron, lse_bound FROM neurons")}
meta = dict(db.execute("SELECT key, value FROM meta"))
bad = sum(1 for line in open(sys.argv[2]) for d in [json.loads(line)]
          if abs(stored[(d["matrix"], d["layer"], d["neuron"])] - d.get("lse_bound", 0)) > 4e-16 * d.get("lse_bound", 0))
print(len(stored), sum(b > 0 for b in stored.values()) > 0, bad, meta["prefilter"], meta["prob_tol"], meta["kernel"])
PY
)" "860 True 0 on inf native" "the atlas stores each neuron's lse_bound (as JSONL gives it) and the prefilter's options"

# ---- the default atlas name: trailing slashes, only known extensions stripped
ln -s "$(cd "$M/stories260K-hf" && pwd)" "$TMP/Llama-3.1-8B"
ln -s "$(cd "$M/stories260K" && pwd)/stories260K.gguf" "$TMP/tiny.v2.gguf"
nm=$(cd "$(dirname "$NM")" && pwd)/$(basename "$NM")
abs=$(cd "$M/stories260K" && pwd)
(cd "$TMP" && "$nm" map Llama-3.1-8B/ --layers 0 >/dev/null 2>&1 && "$nm" map tiny.v2.gguf --layers 0 >/dev/null 2>&1 &&
 "$nm" map "$abs/stories260K.bin" --tokenizer "$abs/tok512.bin" --layers 0 >/dev/null 2>&1)
for f in Llama-3.1-8B.atlas.db tiny.v2.atlas.db stories260K.atlas.db; do
    [ -s "$TMP/$f" ] && ok || fail "default atlas name $f: have $(ls "$TMP" | grep atlas | tr '\n' ' ')"
done
[ ! -e "$TMP/.atlas.db" ] && [ ! -e "$TMP/Llama-3.atlas.db" ] && ok || fail "no hidden or truncated atlas name"
mkdir "$TMP/Tiny-1.5" && ln -s "$(cd "$M/stories260K-hf" && pwd)"/* "$TMP/Tiny-1.5/"
(cd "$TMP/Tiny-1.5" && "$nm" map . --layers 0 >/dev/null 2>&1)
[ -s "$TMP/Tiny-1.5/Tiny-1.5.atlas.db" ] && ok || fail "map . names the atlas after the directory: $(ls -a "$TMP/Tiny-1.5" | tr '\n' ' ')"

# ---- concurrent maps to one atlas: the second is refused ---------------------
exec 9>"$TMP/c.db.partial"
flock -x 9
expect_exit 2 'another map is writing' "${MAP[@]}" -o "$TMP/c.db"
exec 9>&-
[ ! -e "$TMP/c.db" ] && ok || fail "a refused concurrent map writes nothing"
expect_exit 2 'resume.*stdout' "$NM" map "$BIN" "${TOK[@]}" --format tsv --resume
finish
