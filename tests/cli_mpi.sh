# tests/cli_mpi.sh — `map` under mpirun (issue 17, docs/DISTRIBUTED.md): the
# atlas of N ranks equals one process's (export, byte for byte) for N = 1,
# 2, 3, on stories260K and on an 8B-shaped slice; a plain run never calls
# MPI_Init; a rank killed mid-run fails the job and leaves a partial atlas
# that --resume (under MPI too) finishes into the same atlas. All on this
# machine, oversubscribed; without mpirun the MPI checks are skipped.
source "$(dirname "$0")/lib.sh"
BIN=$M/stories260K/stories260K.bin
TOK=(--tokenizer "$M/stories260K/tok512.bin")
MAP=(map "$BIN" "${TOK[@]}" --matrix all --threads 2)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Containers often forbid the cross-memory attach (process_vm_readv) of
# Open MPI's shared-memory transport for large messages: copy through the
# shared segment instead, which works everywhere.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# mpirun NP ARGS...: neuromap ARGS on NP local ranks, bounded in time. In
# the sanitizer build the leak check is off for MPI runs only: Open MPI's
# own components leave allocations at MPI_Finalize (from modules already
# unloaded, so no suppression can name them); neuromap's code on those
# paths is leak-checked by the plain runs here and in cli_shard_merge.sh.
run_mpi() {
    local np=$1; shift
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" timeout 300 mpirun --oversubscribe --bind-to none -np "$np" \
        -x ASAN_OPTIONS -x NEUROMAP_TEST_ABORT_AFTER -x NEUROMAP_TEST_ABORT_RANK "$NM" "$@"
}
same() { "$NM" export "$1" --format tsv | cmp -s - "$2"; }

"$NM" "${MAP[@]}" -o "$TMP/ref.db" 2>/dev/null
"$NM" export "$TMP/ref.db" --format tsv >"$TMP/ref.tsv"

# ---- a plain run never calls MPI_Init ------------------------------------------
# MPI_Init loads Open MPI's components (openmpi3/mca_*.so); the dynamic
# loader's log shows whether it ran. The launcher's variable alone makes it
# run (the check can fail); without it, nothing of MPI is loaded.
mca() { LD_DEBUG=files "$@" 2>&1 >/dev/null | grep -c 'openmpi[0-9]*/mca_'; }
if ldd "$NM" | grep -q libmpi; then
    expect_eq "$(mca "$NM" "${MAP[@]}" -o "$TMP/plain.db" --force)" 0 "a plain run loads no MPI component"
    n=$(OMPI_COMM_WORLD_SIZE=1 mca timeout 60 "$NM" "${MAP[@]}" -o "$TMP/plain.db" --force)
    [ "$n" -gt 0 ] && ok || fail "with a launcher's environment, MPI_Init runs (control)"
fi
same "$TMP/plain.db" "$TMP/ref.tsv" && ok || fail "a plain run's atlas"

if ! command -v mpirun >/dev/null || ! ldd "$NM" | grep -q libmpi; then
    echo "cli_mpi: mpirun or an MPI build missing: MPI checks skipped" >&2
    skipped=27; ldd "$NM" | grep -q libmpi || skipped=29  # the checks below (and the two MPI_Init checks)
    echo "$(basename "$0" .sh): $PASSED passed, $FAILED failed, $skipped skipped"
    [ "$FAILED" -eq 0 ]; exit
fi

# ---- N ranks = one process -------------------------------------------------------
for np in 1 2 3; do
    run_mpi "$np" "${MAP[@]}" -o "$TMP/np$np.db" >"$TMP/out" 2>"$TMP/err" && ok || fail "mpirun -np $np: $(tail -3 "$TMP/err")"
    same "$TMP/np$np.db" "$TMP/ref.tsv" && ok || fail "mpirun -np $np atlas differs from one process's"
done
grep -q '3 ranks (started by Open MPI)' "$TMP/err" && ok || fail "rank 0 says how many ranks: $(cat "$TMP/err")"
expect_eq "$(ls "$TMP" | grep -c partial)" 0 "no partial left after complete MPI runs"
run_mpi 2 "${MAP[@]}" --shard 0/2 -o "$TMP/x.db" >/dev/null 2>"$TMP/err"
[ $? -ne 0 ] && grep -q 'split the map themselves' "$TMP/err" && ok || fail "--shard under mpirun is refused"

# ---- refusals under MPI: exit 2 through mpirun, nothing written ---------------------
run_mpi 2 "${MAP[@]}" -o "$TMP/ref.db" >/dev/null 2>"$TMP/err"
expect_eq "$?" 2 "an existing atlas under mpirun: exit 2"
grep -q 'ref.db: already exists' "$TMP/err" && ok || fail "rank 0 names the atlas: $(head -c 300 "$TMP/err")"
# ranks that read different models (MPMD: rank 1 is given the dogs fine-tune)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" timeout 120 mpirun --oversubscribe --bind-to none -x ASAN_OPTIONS \
    -np 1 "$NM" "${MAP[@]}" -o "$TMP/two.db" : -np 1 "$NM" map "$M/stories260K-dogs/stories260K-dogs.bin" "${TOK[@]}" \
    --matrix all --threads 2 -o "$TMP/two.db" >/dev/null 2>"$TMP/err"
expect_eq "$?" 2 "ranks with different models: exit 2"
grep -q 'the ranks read different models' "$TMP/err" && ok || fail "says the ranks' models differ: $(head -c 300 "$TMP/err")"
expect_eq "$(ls "$TMP" | grep -c '^two.db')" 0 "no atlas or partial from refused MPI runs"

# srun without a PMI plugin: every task alone in its world; refused, not N full maps
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" SLURM_PROCID=0 SLURM_NTASKS=2 timeout 60 "$NM" "${MAP[@]}" -o "$TMP/sl.db" >/dev/null 2>"$TMP/err"
expect_eq "$?" 1 "Slurm tasks that MPI does not join: exit 1"
grep -q 'Slurm started 2 tasks, but MPI sees a world of one' "$TMP/err" && ok || fail "says why: $(head -c 300 "$TMP/err")"

# ---- a rank dies: the job fails, the partial resumes -------------------------------
NEUROMAP_TEST_ABORT_RANK=1 NEUROMAP_TEST_ABORT_AFTER=1 run_mpi 2 "${MAP[@]}" -o "$TMP/kill.db" >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" -ne 0 ] && ok || fail "a killed rank fails mpirun (exit $rc)"
grep -Eq 'rank 1 .*(signal 9|Killed)' "$TMP/err" && ok || fail "mpirun names the rank that died: $(head -c 400 "$TMP/err")"
[ -s "$TMP/kill.db.partial" ] && [ ! -e "$TMP/kill.db" ] && ok || fail "the partial atlas stays, the atlas does not exist"
run_mpi 3 "${MAP[@]}" -o "$TMP/kill.db" --resume >/dev/null 2>"$TMP/err" && ok || fail "--resume under mpirun: $(tail -2 "$TMP/err")"
grep -Eq 'resumed: [0-9]+ neurons were already' "$TMP/err" && ok || fail "the resume continued rank 0's commits: $(tail -3 "$TMP/err")"
same "$TMP/kill.db" "$TMP/ref.tsv" && ok || fail "killed + resumed = one process"

# ---- an 8B-shaped slice: hidden 4096, FFN 14336 (multi-chunk layers), vocabulary 2048 --
# (the real 128,256 vocabulary would take minutes per run on two cores)
"$NM" synth "$TMP/s8b.gguf" --preset llama-3.1-8b --layers 1 --vocab 2048 --dtype bf16 >/dev/null 2>&1
S8=(map "$TMP/s8b.gguf" --matrix up --neurons 0-1279 --threads 2)
"$NM" "${S8[@]}" -o "$TMP/s8.db" 2>/dev/null && ok || fail "8B slice: single process"
"$NM" export "$TMP/s8.db" --format tsv >"$TMP/s8.tsv"
for np in 2 3; do
    run_mpi "$np" "${S8[@]}" -o "$TMP/s8np$np.db" >/dev/null 2>"$TMP/err" || fail "8B slice np $np: $(tail -2 "$TMP/err")"
    same "$TMP/s8np$np.db" "$TMP/s8.tsv" && ok || fail "8B slice: mpirun -np $np differs from one process"
done
# One unit (up, layer 0) of two chunks (1024 + 256 neurons): 2 and 3 ranks
# above cut it between chunks (3: one rank empty); so do 3 shards.
parts=()
for i in 0 1 2; do "$NM" "${S8[@]}" --shard "$i/3" -o "$TMP/s8.$i.db" 2>/dev/null; parts+=("$TMP/s8.$i.db"); done
empty=0; for p in "${parts[@]}"; do [ "$("$NM" export "$p" --format tsv | wc -l)" -eq 1 ] && empty=$((empty + 1)); done
expect_eq "$empty" 1 "8B slice: one of 3 shards of 2 chunks is empty (header only)"
"$NM" merge "${parts[@]}" -o "$TMP/s8m.db" 2>/dev/null && same "$TMP/s8m.db" "$TMP/s8.tsv" && ok || fail "8B slice: 3 shards merged differ"

rm -f "$TMP/s8b.gguf"
finish
