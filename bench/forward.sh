#!/usr/bin/env bash
# bench/forward.sh — forward-pass speed of `neuromap generate` (a benchmark,
# not a test): prompt tokens/s (the prompt goes through in batches) and decode
# tokens/s (one token at a time, greedy), median of RUNS runs, on
#   - stories260K (llama2.c .bin, F32), and
#   - a synthetic Llama-3.2-1B-shaped model (hidden 2048, FFN 8192, 16 layers,
#     vocabulary 128,256, tied head) written by `neuromap synth` in BF16 and Q8_0.
# usage: bench/forward.sh [RUNS]   (env: THREADS, default every CPU; KEEP=1 keeps the models)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
THREADS=${THREADS:-$(nproc)}
SHARED=${NEUROMAP_SHARED:-../shared}
NM=./neuromap
make -s -j2 neuromap >/dev/null
T=$(mktemp -d "${TMPDIR:-/tmp}/nm-bench-fwd.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$T"' EXIT

PROMPT="Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high. Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do."

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# bench NAME N_NEW MODEL [ARGS...]: prints "NAME prompt_tokens prompt_tok/s decode_tok/s"
bench() {
    local name=$1 n=$2; shift 2
    : >"$T/p"; : >"$T/d"
    for _ in $(seq "$RUNS"); do
        "$NM" generate "$@" -p "$PROMPT" -n "$n" --temp 0 --threads "$THREADS" --stats 2>"$T/err" >/dev/null
        local line; line=$(grep 'tokens/s' "$T/err")
        sed -E 's/.*prompt ([0-9]+) tokens.*\(([0-9.]+) tokens\/s\); generated.*/\2/' <<<"$line" >>"$T/p"
        sed -E 's/.*generated .*\(([0-9.]+) tokens\/s\);.*/\1/' <<<"$line" >>"$T/d"
        np=$(sed -E 's/.*prompt ([0-9]+) tokens.*/\1/' <<<"$line")
    done
    printf '%-28s %6s %14.1f %14.2f\n' "$name" "$np" "$(median <"$T/p")" "$(median <"$T/d")"
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; threads $THREADS; median of $RUNS runs; $(date -u +%Y-%m-%d)"
printf '%-28s %6s %14s %14s\n' model prompt "prompt tok/s" "decode tok/s"
S=$SHARED/models/stories260K
bench "stories260K (F32, .bin)" 256 "$S/stories260K.bin" --tokenizer "$S/tok512.bin"

for dt in bf16 q8_0; do
    "$NM" synth "$T/l1b-$dt.gguf" --preset llama-3.2-1b --dtype "$dt" --tokenizer "$SHARED/tokenizers/llama-3.1" --force 2>/dev/null
    bench "Llama-3.2-1B shape ($dt)" 8 "$T/l1b-$dt.gguf"
    rm -f "$T/l1b-$dt.gguf"
done
