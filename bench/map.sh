#!/usr/bin/env bash
# bench/map.sh — issue 7's benchmark (not a test): the neuron map of a
# Llama-3.1-8B-shaped layer (hidden 4096, FFN 14336, vocabulary 128,256, BF16)
# by `neuromap map` against the numpy/OpenBLAS brute force (bench/brute.py).
#
#   bench/map.sh                 RUNS=3 NEURONS=0-1023 by default
#   KEEP=DIR bench/map.sh        reuse/keep the generated model in DIR
#
# Prints, per side: median wall and CPU seconds, GFLOP/s, peak RSS; the ratio;
# whether both give the same token ids; and the full 8B up-projection map
# extrapolated. On a shared machine the wall times move with the load (it is
# printed); CPU seconds are the steadier measure of the work done.
set -euo pipefail
cd "$(dirname "$0")/.."
NM=${NM:-./neuromap}
SHARED=${NEUROMAP_SHARED:-../shared}
RUNS=${RUNS:-3}
NEURONS=${NEURONS:-0-1023}
PY=/usr/bin/python3
WORK=${KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/neuromap-bench.XXXXXX")}
mkdir -p "$WORK"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---- the model ----------------------------------------------------------------
MODEL=$WORK/llama-8b-1layer
if [ ! -f "$MODEL/config.json" ]; then
    vocab=(--vocab 128256)
    if "$NM" info "$SHARED/tokenizers/llama-3.1" >/dev/null 2>&1; then vocab=(--tokenizer "$SHARED/tokenizers/llama-3.1"); fi
    echo "generating $MODEL (BF16, one layer)" >&2
    "$NM" synth "$MODEL" --preset llama-3.1-8b --layers 1 --dtype bf16 "${vocab[@]}" --force >&2
fi
TARGET=("$MODEL")
WHAT="HF BF16"
if ! "$NM" info "$MODEL" >/dev/null 2>&1; then
    # This build cannot read HF directories: the same numbers as a llama2.c F32 file.
    [ -f "$WORK/model.bin" ] || $PY bench/hf_to_llama2c.py "$MODEL" "$WORK/model.bin"
    TARGET=("$WORK/model.bin" --tokenizer "$WORK/model.bin.tok")
    WHAT="llama2.c F32 (converted: this neuromap has no HF loader)"
fi

# ---- runs -------------------------------------------------------------------
n0=${NEURONS%-*} n1=${NEURONS#*-}
count=$((n1 - n0 + 1))
flops=$(awk -v n="$count" 'BEGIN { printf "%.6e", 2 * 128256 * 4096 * n }')
: >"$WORK/nm.times"
: >"$WORK/py.times"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for i in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/t" "$NM" map "${TARGET[@]}" --matrix up --layers 0 --neurons "$NEURONS" \
        --top-k 10 --bottom-k 5 --format tsv >"$WORK/nm.tsv" 2>"$WORK/nm.err"
    cat "$WORK/t" >>"$WORK/nm.times"
    grep -h 'neurons/s' "$WORK/nm.err" >&2
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/t" $PY bench/brute.py "$MODEL" --layer 0 --neurons "$NEURONS" \
        --top-k 10 --bottom-k 5 --out "$WORK/py.ids" 2>"$WORK/py.err"
    cat "$WORK/t" >>"$WORK/py.times"
    cat "$WORK/py.err" >&2
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

tail -n +2 "$WORK/nm.tsv" | cut -f3-5 >"$WORK/nm.ids"
if cmp -s "$WORK/nm.ids" "$WORK/py.ids"; then same="yes"; else same="NO ($(diff "$WORK/nm.ids" "$WORK/py.ids" | grep -c '^<') rows differ)"; fi

nm_wall=$(awk '{ print $1 }' "$WORK/nm.times" | median)
py_wall=$(awk '{ print $1 }' "$WORK/py.times" | median)
nm_cpu=$(awk '{ print $2 + $3 }' "$WORK/nm.times" | median)
py_cpu=$(awk '{ print $2 + $3 }' "$WORK/py.times" | median)
nm_rss=$(awk '{ print $4 }' "$WORK/nm.times" | sort -g | tail -1)
py_rss=$(awk '{ print $4 }' "$WORK/py.times" | sort -g | tail -1)
cores=$(nproc)

cat <<EOF
neuron map benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cores cores
model: Llama-3.1-8B-shaped layer (4096 x 14336, vocabulary 128256), neuromap reads it as $WHAT
slice: --matrix up --layers 0 --neurons $NEURONS --top-k 10 --bottom-k 5 ($count neurons, $flops FLOP)
load average: $load_before before, $load_after after; $RUNS runs each, medians

                 wall s    CPU s   GFLOP/s(wall)  GFLOP/s per CPU s  peak RSS MB
EOF
for side in nm py; do
    w=${side}_wall c=${side}_cpu r=${side}_rss
    awk -v name="$([ $side = nm ] && echo neuromap || echo numpy)" -v w="${!w}" -v c="${!c}" -v r="${!r}" -v f="$flops" \
        'BEGIN { printf "%-14s %8.2f %8.2f %14.1f %18.1f %12.0f\n", name, w, c, f / w / 1e9, f / c / 1e9, r / 1024 }'
done
awk -v nw="$nm_wall" -v pw="$py_wall" -v nc="$nm_cpu" -v pc="$py_cpu" -v n="$count" -v cores="$cores" 'BEGIN {
    printf "ratio numpy/neuromap: %.2fx wall, %.2fx CPU\n", pw / nw, pc / nc
    full = 458752
    printf "full 8B up map (%d neurons): %.1f min at this wall rate, %.1f min on %d idle cores at this CPU rate\n",
           full, nw * full / n / 60, nc * full / n / cores / 60, cores
}'
echo "same token ids: $same"
[ "${same%% *}" = yes ]
