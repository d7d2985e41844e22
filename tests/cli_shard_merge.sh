# tests/cli_shard_merge.sh — `map --shard I/N` and `merge` (issue 17,
# docs/DISTRIBUTED.md): the parts of any N merged equal one uninterrupted
# map, row for row (export, byte for byte); the split is whole layers
# first and cuts layers only between chunks; bad merges are refused with
# exit 2, naming the file, writing nothing.
source "$(dirname "$0")/lib.sh"
BIN=$M/stories260K/stories260K.bin
TOK=(--tokenizer "$M/stories260K/tok512.bin")
MAP=("$NM" map "$BIN" "${TOK[@]}" --matrix all --threads 2)

# ---- the reference: one process ---------------------------------------------
expect_exit 0 '' "${MAP[@]}" -o "$TMP/ref.db"
"$NM" export "$TMP/ref.db" --format tsv >"$TMP/ref.tsv"
expect_eq "$(grep -c $'^up\t' "$TMP/ref.tsv")" $((5 * 172 * 15)) "reference: 5 layers x 172 up neurons x 15 rows"

# shards N PREFIX ARGS...: map every shard of N into PREFIX.I.db
shards() {
    local n=$1 p=$2 i; shift 2
    for ((i = 0; i < n; i++)); do "${MAP[@]}" --shard "$i/$n" -o "$p.$i.db" "$@" 2>>"$TMP/shards.err" || return 1; done
}

# ---- merged parts equal the single process, for N below and above 15 units --
for n in 1 2 3 7 15 16; do
    rm -f "$TMP"/s.*.db "$TMP/m.db"
    shards "$n" "$TMP/s" && ok || fail "mapping $n shards: $(tail -1 "$TMP/shards.err")"
    parts=(); for ((i = 0; i < n; i++)); do parts+=("$TMP/s.$i.db"); done
    expect_exit 0 "$n of $n shards" "$NM" merge "${parts[@]}" -o "$TMP/m.db"
    "$NM" export "$TMP/m.db" --format tsv | cmp -s - "$TMP/ref.tsv" && ok || fail "merge of $n shards differs from the single process"
    "$NM" export "$TMP/m.db" --format jsonl | cmp -s - <("$NM" export "$TMP/ref.db" --format jsonl) && ok || fail "jsonl, $n shards"
done
# the parts in any order (here the 16 of the last loop, reversed)
rev=(); for ((i = ${#parts[@]} - 1; i >= 0; i--)); do rev+=("${parts[i]}"); done
"$NM" merge "${rev[@]}" -o "$TMP/rev.db" 2>/dev/null && "$NM" export "$TMP/rev.db" --format tsv | cmp -s - "$TMP/ref.tsv" && ok ||
    fail "parts given in reverse order merge to the reference"
# Every part holds only its own neurons, whole (matrix, layer) units first:
# 2 of 2 holds layers 2..4 of 0..4 in layer order (units 7..14: layer 2 gate onwards).
rm -f "$TMP"/s.*.db; shards 2 "$TMP/s"
got=$(python3 -c "import sqlite3,sys; print('|'.join(map(str, sqlite3.connect(sys.argv[1]).execute('SELECT min(layer), max(layer), count(*) FROM neurons').fetchone())))" "$TMP/s.1.db")
expect_eq "$got" "2|4|$((8 * 172))" "shard 1/2: units 7..14 of 15 (layer 2 gate, down; layers 3, 4)"
# The meta of the merged atlas is the single process's, but for 'created'.
meta() { python3 -c "import sqlite3,sys; [print(*r) for r in sqlite3.connect(sys.argv[1]).execute(\"SELECT * FROM meta WHERE key NOT IN ('created') ORDER BY key\")]" "$1"; }
"$NM" merge "$TMP/s.0.db" "$TMP/s.1.db" -o "$TMP/m2.db" 2>/dev/null
expect_eq "$(meta "$TMP/m2.db")" "$(meta "$TMP/ref.db")" "merged meta = single-process meta"
expect_eq "$(meta "$TMP/s.1.db" | grep '^shard ')" "shard 1/2" "a part records its shard"

# ---- non-finite neurons keep their flag through parts and merge --------------------
# up 1:5 gets a NaN (element 3 of its row; layout as in cli_nonfinite.sh)
python3 - "$BIN" "$TMP/nan.bin" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
dim, hidden, L, heads, kv, vocab, seq = struct.unpack_from("7i", data, 0)
kv_dim = dim * kv // heads
w1 = abs(vocab) * dim + L * dim + L * dim * dim + 2 * L * kv_dim * dim + L * dim * dim + L * dim
w3 = w1 + 2 * L * hidden * dim
struct.pack_into("<f", data, 28 + 4 * (w3 + (1 * hidden + 5) * dim + 3), float("nan"))
open(sys.argv[2], "wb").write(data)
PY
NAN=("$NM" map "$TMP/nan.bin" "${TOK[@]}" --matrix all --threads 2)
"${NAN[@]}" -o "$TMP/nan.db" 2>/dev/null
for i in 0 1 2; do "${NAN[@]}" --shard "$i/3" -o "$TMP/nan.$i.db" 2>/dev/null; done
"$NM" merge "$TMP"/nan.[012].db -o "$TMP/nanm.db" 2>/dev/null
"$NM" export "$TMP/nanm.db" --format jsonl >"$TMP/nanm.jsonl"
grep -q '"matrix":"up","layer":1,"neuron":5,.*"nonfinite":true' "$TMP/nanm.jsonl" && ok || fail "the merged atlas flags up 1:5 non-finite"
"$NM" export "$TMP/nan.db" --format jsonl | cmp -s - "$TMP/nanm.jsonl" && ok || fail "non-finite model: merged = one process (jsonl)"

# ---- refusals: exit 2, the file named, no output ------------------------------
"$NM" map "$M/stories260K-dogs/stories260K-dogs.bin" "${TOK[@]}" --matrix all --threads 2 --shard 1/2 -o "$TMP/dogs.1.db" 2>/dev/null
expect_exit 2 'dogs.1.db: mapped from a different model' "$NM" merge "$TMP/s.0.db" "$TMP/dogs.1.db" -o "$TMP/bad.db"
"${MAP[@]}" --shard 1/2 --top-k 4 -o "$TMP/k4.1.db" 2>/dev/null
expect_exit 2 'k4.1.db: mapped with other options .*--top-k' "$NM" merge "$TMP/s.0.db" "$TMP/k4.1.db" -o "$TMP/bad.db"
"${MAP[@]}" --shard 1/3 -o "$TMP/n3.1.db" 2>/dev/null
expect_exit 2 'n3.1.db: mapped with other options .*--shard N' "$NM" merge "$TMP/s.0.db" "$TMP/n3.1.db" -o "$TMP/bad.db"
cp "$TMP/s.1.db" "$TMP/again.1.db"
expect_exit 2 'again.1.db: overlaps .*s.1.db: both hold shard 1/2' "$NM" merge "$TMP/s.0.db" "$TMP/s.1.db" "$TMP/again.1.db" -o "$TMP/bad.db"
expect_exit 2 'bad.db: incomplete: shard 1 of 2 missing' "$NM" merge "$TMP/s.0.db" -o "$TMP/bad.db"
expect_exit 2 'ref.db: not a shard' "$NM" merge "$TMP/s.0.db" "$TMP/ref.db" -o "$TMP/bad.db"
expect_exit 2 'nothing.db: not an atlas' "$NM" merge "$TMP/s.0.db" "$TMP/nothing.db" -o "$TMP/bad.db"
# a part cut short (a killed shard's partial) is refused, naming it
(NEUROMAP_TEST_ABORT_AFTER=1 "${MAP[@]}" --shard 1/2 -o "$TMP/cut.db" >/dev/null 2>&1) 2>/dev/null
expect_exit 2 'cut.db.partial: shard 1/2 is incomplete: it holds 172 of its 1376' "$NM" merge "$TMP/s.0.db" "$TMP/cut.db.partial" -o "$TMP/bad.db"
[ -e "$TMP/bad.db" ] || [ -e "$TMP/bad.db.partial" ] && fail "a refused merge wrote output" || ok
expect_exit 2 'cannot resume: --shard differs' "${MAP[@]}" --shard 0/2 -o "$TMP/cut.db" --resume
# ... and finished with --resume, it merges to the reference
expect_exit 0 'resumed: 172 neurons' "${MAP[@]}" --shard 1/2 -o "$TMP/cut.db" --resume
"$NM" merge "$TMP/s.0.db" "$TMP/cut.db" -o "$TMP/m3.db" 2>/dev/null
"$NM" export "$TMP/m3.db" --format tsv | cmp -s - "$TMP/ref.tsv" && ok || fail "a resumed shard merges to the reference"
# --allow-incomplete writes what there is, and says so in the atlas
expect_exit 0 'incomplete: shard 1 of 2 missing' "$NM" merge "$TMP/s.0.db" -o "$TMP/half.db" --allow-incomplete
expect_eq "$(meta "$TMP/half.db" | grep '^missing_shards')" "missing_shards 1 of 2" "the atlas names its missing shards"
expect_eq "$("$NM" export "$TMP/half.db" --format tsv | wc -l)" "$("$NM" export "$TMP/s.0.db" --format tsv | wc -l)" "half = shard 0"
expect_exit 2 'already exists' "$NM" merge "$TMP/s.0.db" "$TMP/s.1.db" -o "$TMP/half.db"

# ---- usage --------------------------------------------------------------------
expect_exit 2 "--shard: '2/2' is not I/N" "${MAP[@]}" --shard 2/2 -o "$TMP/x.db"
expect_exit 2 "--shard: 'a/b' is not I/N" "${MAP[@]}" --shard a/b -o "$TMP/x.db"
expect_exit 2 'name it with -o PART' "${MAP[@]}" --shard 0/2
expect_exit 2 'not --format tsv' "${MAP[@]}" --shard 0/2 --format tsv
expect_exit 2 'cannot be split' "${MAP[@]}" --shard 0/2 --prefilter -o "$TMP/x.db"
expect_exit 2 'expected one or more PART' "$NM" merge -o "$TMP/x.db"

finish
