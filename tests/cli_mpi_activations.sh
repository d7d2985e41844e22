# tests/cli_mpi_activations.sh — `activations` split (issue 17,
# docs/DISTRIBUTED.md): shards of a job array (--shard I/N, merged in two
# rounds) and MPI ranks give an atlas whose activation tables equal one
# process's row for row (statistics, exact sums, examples, band samples,
# unigrams, documents; and what show --examples prints). Merges of parts
# that do not belong together are refused; a killed part or rank resumes.
# MPI: on this machine, oversubscribed; without mpirun those checks skip.
source "$(dirname "$0")/lib.sh"
B=$M/stories260K/stories260K.bin
TOK=(--tokenizer "$M/stories260K/tok512.bin")
head -n 16 "$SHARED/corpora/stories260K-samples.txt" >"$TMP/c.txt"
ACT=(activations "$B" "${TOK[@]}" --corpus "$TMP/c.txt" --window 48 --top-n 6 --bottom-n 4 --threads 1)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none # as in cli_mpi.sh
# As cli_mpi.sh: the leak check is off for MPI runs only (Open MPI's own leaks).
run_mpi() {
    local np=$1; shift
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" timeout 300 mpirun --oversubscribe --bind-to none -np "$np" \
        -x ASAN_OPTIONS -x NEUROMAP_TEST_ABORT_AFTER -x NEUROMAP_TEST_ABORT_RANK "$NM" "$@"
}
# Every activation table as text (the exact sums included), and what show prints.
dump() {
    sqlite3 -batch "$1" "select * from act_neurons; select * from act_examples; select * from act_tokens; select * from act_docs;
                         select layer, neuron, hex(sums) from act_sums; select * from act_meta order by key"
    for n in 0:140 2:7 4:171; do "$NM" show "$1" "$n" --examples --format json; done
}
same() { cmp -s <(dump "$1") "$TMP/ref.txt"; }

# The reference: one process on 2 threads (the parts and ranks run on 1:
# threads change nothing either; this check was cli_activations.sh's).
"$NM" "${ACT[@]}" --threads 2 -o "$TMP/ref.db" 2>/dev/null
dump "$TMP/ref.db" >"$TMP/ref.txt"
expect_eq "$(sqlite3 "$TMP/ref.db" "select count(*) from act_sums")" 860 "one process: every neuron's exact sums are stored"

# ---- one process, killed and resumed (moved here from cli_activations.sh) ----------
{ NEUROMAP_TEST_ABORT_AFTER=6 "$NM" "${ACT[@]}" -o "$TMP/c.db" >/dev/null; } 2>/dev/null
expect_eq "$?:$([ -e "$TMP/c.db" ] && echo final)" "137:" "a run killed in pass 1 leaves no atlas under the final name"
expect_exit 2 "use --resume" "$NM" "${ACT[@]}" -o "$TMP/c.db"
expect_exit 2 "--window differs" "$NM" "${ACT[@]}" -o "$TMP/c.db" --resume --window 32
expect_exit 2 "the stage \(--shard, --bands\) differs" "$NM" "${ACT[@]}" -o "$TMP/c.db" --resume --shard 0/2
expect_exit 0 "resuming .* at pass 1, document 6" "$NM" "${ACT[@]}" -o "$TMP/c.db" --resume
same "$TMP/c.db" && ok || fail "killed in pass 1 and resumed = uninterrupted"
{ NEUROMAP_TEST_ABORT_AFTER=21 "$NM" "${ACT[@]}" -o "$TMP/c.db" --force >/dev/null; } 2>/dev/null
expect_exit 0 "resuming .* at pass 2, document 5" "$NM" "${ACT[@]}" -o "$TMP/c.db" --resume
same "$TMP/c.db" && ok || fail "killed in pass 2 and resumed = uninterrupted"
expect_eq "$(ls "$TMP" | grep -c partial)" "0" "no partial file is left behind"

# ---- shards: pass-1 parts → merge → bands; pass-2 parts + bands → merge → atlas ----
shards() { # N PREFIX: the whole two-round workflow with N shards
    local n=$1 pre=$2 i parts=()
    for ((i = 0; i < n; i++)); do "$NM" "${ACT[@]}" --shard "$i/$n" -o "$pre.p1.$i.db" 2>/dev/null; parts+=("$pre.p1.$i.db"); done
    "$NM" merge "${parts[@]}" -o "$pre.bands.db" 2>/dev/null || return 1
    parts=("$pre.bands.db")
    for ((i = 0; i < n; i++)); do "$NM" "${ACT[@]}" --shard "$i/$n" --bands "$pre.bands.db" -o "$pre.p2.$i.db" 2>/dev/null; parts+=("$pre.p2.$i.db"); done
    "$NM" merge "${parts[@]}" -o "$pre.db" 2>"$TMP/err"
}
shards 3 "$TMP/s3" && ok || fail "3 shards: $(cat "$TMP/err")"
same "$TMP/s3.db" && ok || fail "3 shards merged: the activation tables differ from one process's"
grep -q 'activations of 3 shards' "$TMP/err" && ok || fail "merge says what it joined: $(cat "$TMP/err")"
# 2 shards in pass 1, given in reverse; 2 in pass 2, merged in another order
for i in 0 1; do "$NM" "${ACT[@]}" --shard "$i/2" -o "$TMP/f.p1.$i.db" 2>/dev/null; done
"$NM" merge "$TMP/f.p1.1.db" "$TMP/f.p1.0.db" -o "$TMP/f.bands.db" 2>/dev/null
hash() { sqlite3 "$1" "select value from act_meta where key = 'bands_hash'"; }
expect_eq "$(hash "$TMP/f.bands.db")" "$(hash "$TMP/s3.bands.db")" "bands of 2 pass-1 shards = bands of 3 (the merge is exact)"
for i in 0 1; do "$NM" "${ACT[@]}" --shard "$i/2" --bands "$TMP/f.bands.db" -o "$TMP/f.p2.$i.db" 2>/dev/null; done
"$NM" merge "$TMP/f.p2.1.db" "$TMP/f.bands.db" "$TMP/f.p2.0.db" -o "$TMP/f.db" 2>/dev/null
same "$TMP/f.db" && ok || fail "2 + 2 shards, given in any order: the activation tables differ from one process's"

# a pass-2 part killed after 3 documents, resumed as the same part only
{ NEUROMAP_TEST_ABORT_AFTER=3 "$NM" "${ACT[@]}" --shard 0/2 --bands "$TMP/f.bands.db" -o "$TMP/k.p2.0.db" >/dev/null; } 2>/dev/null
expect_exit 2 "--shard differs" "$NM" "${ACT[@]}" --shard 1/2 --bands "$TMP/f.bands.db" -o "$TMP/k.p2.0.db" --resume
expect_exit 0 "resuming .* at pass 2, document 3" "$NM" "${ACT[@]}" --shard 0/2 --bands "$TMP/f.bands.db" -o "$TMP/k.p2.0.db" --resume
cmp -s <(sqlite3 "$TMP/k.p2.0.db" "select * from act_examples; select hex(sums) from act_sums") \
    <(sqlite3 "$TMP/f.p2.0.db" "select * from act_examples; select hex(sums) from act_sums") && ok || fail "killed + resumed part = the part"

# refusals: exit 2, naming the part, writing nothing
P1=("$TMP"/s3.p1.[0-2].db)
expect_exit 2 "x.db: incomplete: shard 1 of 3 missing" "$NM" merge "${P1[0]}" "${P1[2]}" -o "$TMP/x.db"
expect_exit 2 "--allow-incomplete is for map parts" "$NM" merge "${P1[0]}" "${P1[2]}" -o "$TMP/x.db" --allow-incomplete
expect_exit 2 "s3.p1.2.db: shard 2/3 is given twice" "$NM" merge "${P1[@]}" "${P1[2]}" -o "$TMP/x.db"
expect_exit 2 "f.p1.0.db: shard 0/2 of another split" "$NM" merge "${P1[@]}" "$TMP/f.p1.0.db" -o "$TMP/x.db"
expect_exit 2 "pass-1 parts merge among themselves" "$NM" merge "${P1[@]}" "$TMP/s3.p2.0.db" -o "$TMP/x.db"
expect_exit 2 "merge with the one bands atlas they used \(0 given\)" "$NM" merge "$TMP"/s3.p2.[0-2].db -o "$TMP/x.db"
"$NM" "${ACT[@]}" --seed 7 --shard 0/3 -o "$TMP/seed.db" 2>/dev/null
expect_exit 2 "seed.db: a part of another run: the seed differs" "$NM" merge "${P1[@]:1}" "$TMP/seed.db" -o "$TMP/x.db"
"$NM" activations "$M/stories260K-dogs/stories260K-dogs.bin" "${TOK[@]}" --corpus "$TMP/c.txt" --window 48 --top-n 6 --bottom-n 4 --shard 0/3 -o "$TMP/dogs.db" 2>/dev/null
expect_exit 2 "dogs.db: a part of another run: MODEL's weights differ" "$NM" merge "${P1[@]:1}" "$TMP/dogs.db" -o "$TMP/x.db"
expect_exit 2 "bands of another run: the seed differs" "$NM" "${ACT[@]}" --seed 7 --shard 0/3 --bands "$TMP/s3.bands.db" -o "$TMP/x.db"
expect_exit 2 "bands of another model: MODEL's weights differ" "$NM" activations "$M/stories260K-dogs/stories260K-dogs.bin" "${TOK[@]}" \
    --corpus "$TMP/c.txt" --window 48 --top-n 6 --bottom-n 4 --shard 0/3 --bands "$TMP/s3.bands.db" -o "$TMP/x.db"
expect_exit 2 "not a 'pass1' part" "$NM" "${ACT[@]}" --shard 0/3 --bands "${P1[0]}" -o "$TMP/x.db"
expect_exit 2 "--max-tokens cannot be split among shards" "$NM" "${ACT[@]}" --shard 0/3 --max-tokens 10 -o "$TMP/x.db"
expect_exit 2 "--bands is for a shard's pass 2" "$NM" "${ACT[@]}" --bands "$TMP/s3.bands.db" -o "$TMP/x.db"
expect_exit 2 "not complete" "$NM" show "$TMP/s3.bands.db" 0:140 --examples
expect_eq "$(ls "$TMP" | grep -c '^x.db')" 0 "no atlas or partial from refused merges"

if ! command -v mpirun >/dev/null || ! ldd "$NM" | grep -q libmpi; then
    skip 12 "mpirun or an MPI build missing"
    finish; exit
fi

# In the sanitizer build (CI time) only what exercises other code: 2 ranks,
# and a rank killed and resumed by 3; the opt build runs every check.
FULL=1; ldd "$NM" | grep -q libasan && FULL=0

# ---- N ranks = one process ------------------------------------------------------
for np in 2 3; do
    [ "$np" -eq 3 ] && [ "$FULL" -eq 0 ] && { skip 2 "mpirun -np 3: the opt build's (the resume below runs 3 ranks)"; continue; }
    run_mpi "$np" "${ACT[@]}" -o "$TMP/np$np.db" >/dev/null 2>"$TMP/err" && ok || fail "mpirun -np $np: $(tail -3 "$TMP/err")"
    same "$TMP/np$np.db" && ok || fail "mpirun -np $np: the activation tables differ from one process's"
done

# ---- a rank dies: the job fails, the partial resumes --------------------------------
# rank 1 dies in pass 2 (its 8 documents of pass 1, then 3 more): rank 0
# committed the merged pass 1, which a resume continues, with 3 ranks
NEUROMAP_TEST_ABORT_RANK=1 NEUROMAP_TEST_ABORT_AFTER=11 run_mpi 2 "${ACT[@]}" -o "$TMP/kill.db" >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" -ne 0 ] && grep -Eq 'rank 1 .*(signal 9|Killed)' "$TMP/err" && ok || fail "a killed rank fails mpirun, named (exit $rc): $(head -c 300 "$TMP/err")"
[ -s "$TMP/kill.db.partial" ] && [ ! -e "$TMP/kill.db" ] && ok || fail "the partial atlas stays, the atlas does not exist"
run_mpi 3 "${ACT[@]}" -o "$TMP/kill.db" --resume >/dev/null 2>"$TMP/err"
grep -q 'resuming .* at pass 2, document 0' "$TMP/err" && same "$TMP/kill.db" && ok || fail "killed + resumed under mpirun = one process: $(tail -2 "$TMP/err")"
grep -q '3 ranks (started by Open MPI) split the documents' "$TMP/err" && ok || fail "rank 0 says how many ranks: $(head -c 300 "$TMP/err")"
expect_eq "$(ls "$TMP" | grep -c partial)" 0 "no partial left"
if [ "$FULL" -eq 0 ]; then
    skip 3 "refusals under mpirun and a single process's partial resumed by ranks: the opt build's"
    finish; exit
fi

# ---- refusals: exit 2 through mpirun, nothing written --------------------------------
run_mpi 2 "${ACT[@]}" --max-tokens 100 -o "$TMP/x.db" >/dev/null 2>"$TMP/err"
expect_eq "$?:$(grep -q 'max-tokens cannot be split' "$TMP/err" && echo said)" "2:said" "--max-tokens under mpirun: exit 2, saying why"
# ranks that read different corpora (MPMD: rank 1 is given another file)
head -n 17 "$SHARED/corpora/stories260K-samples.txt" >"$TMP/d.txt"
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" timeout 120 mpirun --oversubscribe --bind-to none -x ASAN_OPTIONS \
    -np 1 "$NM" "${ACT[@]}" -o "$TMP/two.db" : -np 1 "$NM" activations "$B" "${TOK[@]}" --corpus "$TMP/d.txt" --window 48 \
    --top-n 6 --bottom-n 4 --threads 1 -o "$TMP/two.db" >/dev/null 2>"$TMP/err"
expect_eq "$?:$(grep -q 'the ranks read different corpora' "$TMP/err" && echo said):$(ls "$TMP" | grep -c '^two.db')" "2:said:0" \
    "ranks with different corpora: exit 2, said, nothing written"

# ---- a single process killed in pass 1 after 6 documents, resumed by 2 ranks ------
{ NEUROMAP_TEST_ABORT_AFTER=6 "$NM" "${ACT[@]}" -o "$TMP/kill1.db" >/dev/null; } 2>/dev/null
run_mpi 2 "${ACT[@]}" -o "$TMP/kill1.db" --resume >/dev/null 2>"$TMP/err"
grep -q 'resuming .* at pass 1, document 6' "$TMP/err" && same "$TMP/kill1.db" && ok || fail "one process killed, 2 ranks resumed = one process: $(tail -2 "$TMP/err")"
finish
