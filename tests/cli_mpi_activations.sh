# tests/cli_mpi_activations.sh — `activations` split among MPI ranks (issue
# 17, docs/DISTRIBUTED.md): the atlas of N ranks holds the same activation
# tables, row for row, as one process's (statistics, exact sums, examples,
# band samples, unigrams, documents), for N = 2 and 3; a rank killed
# mid-run fails the job and --resume (under MPI or not) finishes the partial
# into the same atlas. All on this machine, oversubscribed; without mpirun
# the MPI checks are skipped.
source "$(dirname "$0")/lib.sh"
B=$M/stories260K/stories260K.bin
TOK=(--tokenizer "$M/stories260K/tok512.bin")
head -n 24 "$SHARED/corpora/stories260K-samples.txt" >"$TMP/c.txt"
ACT=(activations "$B" "${TOK[@]}" --corpus "$TMP/c.txt" --window 48 --threads 1)
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

"$NM" "${ACT[@]}" -o "$TMP/ref.db" 2>/dev/null
dump "$TMP/ref.db" >"$TMP/ref.txt"
expect_eq "$(sqlite3 "$TMP/ref.db" "select count(*) from act_sums")" 860 "one process: every neuron's exact sums are stored"

if ! command -v mpirun >/dev/null || ! ldd "$NM" | grep -q libmpi; then
    skip 12 "mpirun or an MPI build missing"
    finish; exit
fi

# ---- N ranks = one process ------------------------------------------------------
for np in 2 3; do
    run_mpi "$np" "${ACT[@]}" -o "$TMP/np$np.db" >/dev/null 2>"$TMP/err" && ok || fail "mpirun -np $np: $(tail -3 "$TMP/err")"
    same "$TMP/np$np.db" && ok || fail "mpirun -np $np: the activation tables differ from one process's"
done
grep -q '3 ranks (started by Open MPI) split the documents' "$TMP/err" && ok || fail "rank 0 says how many ranks: $(head -c 300 "$TMP/err")"
run_mpi 2 "${ACT[@]}" --max-tokens 100 -o "$TMP/x.db" >/dev/null 2>"$TMP/err"
expect_eq "$?:$(grep -q 'max-tokens cannot be split' "$TMP/err" && echo said)" "2:said" "--max-tokens under mpirun: exit 2, saying why"
# ranks that read different corpora (MPMD: rank 1 is given another file)
head -n 25 "$SHARED/corpora/stories260K-samples.txt" >"$TMP/d.txt"
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" timeout 120 mpirun --oversubscribe --bind-to none -x ASAN_OPTIONS \
    -np 1 "$NM" "${ACT[@]}" -o "$TMP/two.db" : -np 1 "$NM" activations "$B" "${TOK[@]}" --corpus "$TMP/d.txt" --window 48 \
    --threads 1 -o "$TMP/two.db" >/dev/null 2>"$TMP/err"
expect_eq "$?:$(grep -q 'the ranks read different corpora' "$TMP/err" && echo said):$(ls "$TMP" | grep -c '^two.db')" "2:said:0" \
    "ranks with different corpora: exit 2, said, nothing written"

# ---- a rank dies: the job fails, the partial resumes --------------------------------
# rank 1 dies in pass 2 (its 12 documents of pass 1, then 3 more): rank 0
# committed the merged pass 1, which a resume continues, with 3 ranks
NEUROMAP_TEST_ABORT_RANK=1 NEUROMAP_TEST_ABORT_AFTER=15 run_mpi 2 "${ACT[@]}" -o "$TMP/kill.db" >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" -ne 0 ] && grep -Eq 'rank 1 .*(signal 9|Killed)' "$TMP/err" && ok || fail "a killed rank fails mpirun, named (exit $rc): $(head -c 300 "$TMP/err")"
[ -s "$TMP/kill.db.partial" ] && [ ! -e "$TMP/kill.db" ] && ok || fail "the partial atlas stays, the atlas does not exist"
run_mpi 3 "${ACT[@]}" -o "$TMP/kill.db" --resume >/dev/null 2>"$TMP/err"
grep -q 'resuming .* at pass 2, document 0' "$TMP/err" && same "$TMP/kill.db" && ok || fail "killed + resumed under mpirun = one process: $(tail -2 "$TMP/err")"
# a single process killed in pass 1 after 10 documents, resumed by 2 ranks
{ NEUROMAP_TEST_ABORT_AFTER=10 "$NM" "${ACT[@]}" -o "$TMP/kill1.db" >/dev/null; } 2>/dev/null
run_mpi 2 "${ACT[@]}" -o "$TMP/kill1.db" --resume >/dev/null 2>"$TMP/err"
grep -q 'resuming .* at pass 1, document 10' "$TMP/err" && same "$TMP/kill1.db" && ok || fail "one process killed, 2 ranks resumed = one process: $(tail -2 "$TMP/err")"
expect_eq "$(ls "$TMP" | grep -c partial)" 0 "no partial left"
finish
