#!/usr/bin/env bash
# bench/compare.sh OLD NEW — is NEW as fast as OLD? (a benchmark, not a test)
#
# Runs two neuromap binaries interleaved on the same workloads, RUNS rounds,
# and prints medians and the ratio OLD/NEW (> 1: NEW is faster):
#   map      the up map of NEURONS neurons of a Llama-3.1-8B-shaped BF16 layer
#            (vocabulary 128,256: the paper's workload, bench/map.sh's model)
#   prompt,  generate --stats on a Llama-3.2-1B-shaped BF16 GGUF
#   decode   (bench/forward.sh's model, 4 layers; sampled with a fixed seed,
#            since greedy text from random weights can stop at once)
# Interleaving keeps a shared machine's load from favouring either side.
# usage: RUNS=3 NEURONS=0-511 KEEP=/tmp/nm-cmp bench/compare.sh OLD NEW
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1 NEW=$2
RUNS=${RUNS:-3}
NEURONS=${NEURONS:-0-511}
SHARED=${NEUROMAP_SHARED:-../shared}
WORK=${KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/nm-compare.XXXXXX")}
mkdir -p "$WORK"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

MAPM=$WORK/l8b-1layer FWDM=$WORK/l1b-bf16.gguf
[ -f "$MAPM/config.json" ] || "$NEW" synth "$MAPM" --preset llama-3.1-8b --layers 1 --dtype bf16 \
    --tokenizer-dir "$SHARED/tokenizers/llama-3.1" --force >&2
[ -f "$FWDM" ] || "$NEW" synth "$FWDM" --preset llama-3.2-1b --dtype bf16 --layers 4 \
    --tokenizer-dir "$SHARED/tokenizers/llama-3.1" --force >&2
PROMPT="Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends."

: >"$WORK/times"
for i in $(seq "$RUNS"); do
    for side in old new; do
        bin=$OLD; [ $side = new ] && bin=$NEW
        /usr/bin/time -f "%e" -o "$WORK/t" "$bin" map "$MAPM" --matrix up --layers 0 --neurons "$NEURONS" \
            --format tsv >"$WORK/$side.tsv" 2>/dev/null
        echo "$side map $(cat "$WORK/t")" >>"$WORK/times"
        "$bin" generate "$FWDM" -p "$PROMPT" -n 8 --temp 1 --top-p 1 --seed 7 --stats 2>"$WORK/err" >/dev/null
        awk -v s=$side '/tokens\/s/ { for (i = 1; i <= NF; i++) if ($i ~ /tokens\/s/) { gsub(/[(]/, "", $(i-1)); v[++n] = $(i-1) } }
            END { print s, "prompt", v[1]; print s, "decode", v[2] }' "$WORK/err" >>"$WORK/times"
    done
done
cmp -s <(cut -f1-5 "$WORK/old.tsv") <(cut -f1-5 "$WORK/new.tsv") && same=yes || same=NO
echo "compare, $(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $RUNS runs, medians"
for w in map prompt decode; do
    o=$(awk -v w=$w '$1 == "old" && $2 == w { print $3 }' "$WORK/times" | median)
    n=$(awk -v w=$w '$1 == "new" && $2 == w { print $3 }' "$WORK/times" | median)
    if [ $w = map ]; then
        awk -v o="$o" -v n="$n" 'BEGIN { printf "map %-9s old %8.2f s    new %8.2f s    old/new %.2f\n", "'"$NEURONS"'", o, n, o / n }'
    else
        awk -v w=$w -v o="$o" -v n="$n" 'BEGIN { printf "%-13s old %8.2f tok/s new %8.2f tok/s new/old %.2f\n", w, o, n, n / o }'
    fi
done
echo "map token ids identical: $same"
