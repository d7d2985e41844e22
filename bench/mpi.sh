#!/usr/bin/env bash
# bench/mpi.sh — issue 17's measurement (not a test): the map of an
# 8B-shaped slice (hidden 4096, FFN 14336, BF16; VOCAB tokens, default 2048)
# by 1, 2 and 3 MPI ranks of THREADS threads each, and the same split done
# as 2 --shard processes plus merge (the "per-rank partial atlases" way),
# each atlas compared with the single process's by `neuromap export`.
# Prints wall seconds, CPU seconds (user + sys, all processes) and GFLOP/s.
#
#   bench/mpi.sh                   VOCAB=2048 NEURONS=0-4095 THREADS=1
#   VOCAB=128256 NEURONS=0-1023 MATRIX=up bench/mpi.sh   the real head: the per-core rate
set -uo pipefail
cd "$(dirname "$0")/.."
NM=${NM:-./neuromap}
VOCAB=${VOCAB:-2048} NEURONS=${NEURONS:-0-4095} THREADS=${THREADS:-1} MATRIX=${MATRIX:-all}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/neuromap-mpi.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$NM" synth "$WORK/m.gguf" --preset llama-3.1-8b --layers 1 --vocab "$VOCAB" --dtype bf16 >/dev/null 2>&1 || exit 1
MAP=(map "$WORK/m.gguf" --matrix "$MATRIX" --neurons "$NEURONS" --threads "$THREADS")
a=${NEURONS%-*} b=${NEURONS#*-}
per=$((b - a + 1)); [ "$MATRIX" = all ] && per=$((3 * per))
flop=$(python3 -c "print(2 * $per * $VOCAB * 4096)")
# timed LABEL CMD...: wall and CPU seconds of CMD (children included)
timed() {
    local label=$1; shift
    /usr/bin/time -f "%e %U %S" -o "$WORK/t" bash -c "$*" >/dev/null 2>"$WORK/err" || { echo "$label: failed: $(tail -2 "$WORK/err")"; return; }
    read -r wall user sys <"$WORK/t"
    python3 -c "import sys; l, w, u, s, f = sys.argv[1], *map(float, sys.argv[2:]); c = u + s
print('%-28s wall %7.2f s  cpu %7.2f s  %6.1f GFLOP/s (wall)  %6.1f GFLOP per cpu-s' % (l, w, c, f / w / 1e9, f / c / 1e9))" \
        "$label" "$wall" "$user" "$sys" "$flop"
}
echo "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $per neurons x vocab $VOCAB x 4096"
timed "1 process" "$NM ${MAP[*]} -o $WORK/ref.db"
"$NM" export "$WORK/ref.db" --format tsv >"$WORK/ref.tsv"
for np in 1 2 3; do
    timed "mpirun -np $np (gather)" "mpirun --oversubscribe --bind-to none -np $np $NM ${MAP[*]} -o $WORK/np$np.db"
    "$NM" export "$WORK/np$np.db" --format tsv | cmp -s - "$WORK/ref.tsv" && echo "  atlas = 1 process: yes" || echo "  atlas = 1 process: NO"
done
timed "2 shards + merge (parts)" "$NM ${MAP[*]} --shard 0/2 -o $WORK/p0.db & $NM ${MAP[*]} --shard 1/2 -o $WORK/p1.db; wait; $NM merge $WORK/p0.db $WORK/p1.db -o $WORK/pm.db"
"$NM" export "$WORK/pm.db" --format tsv | cmp -s - "$WORK/ref.tsv" && echo "  atlas = 1 process: yes" || echo "  atlas = 1 process: NO"
timed "  of which merge alone" "$NM merge $WORK/p0.db $WORK/p1.db -o $WORK/pm2.db"
