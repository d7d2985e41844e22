#!/usr/bin/env bash
# bench/forward.sh — forward-pass speed of `neuromap generate` (a benchmark,
# not a test): prompt tokens/s (the prompt goes through in batches) and decode
# tokens/s (one token at a time, greedy), median of RUNS runs, on
#   - stories260K (llama2.c .bin, F32), and
#   - a synthetic Llama-3.2-1B-shaped model (hidden 2048, FFN 8192, 16 layers,
#     vocabulary 128,256, tied head) written by `neuromap synth` in BF16 and
#     Q8_0, and in Q4_K_M when LLAMA_QUANTIZE is given (made from the BF16
#     file by llama.cpp's llama-quantize);
# each on the fast path (the default: quantised dot products, tensor/vecdot.h)
# and with --exact-activations (the F32 path), beside the decode ceiling:
# memory read bandwidth (bench/memread.c, a plain read loop over the mapped
# model file) / the file's bytes.
# With LLAMA_BENCH=/path/to/llama-bench (llama.cpp built outside this
# repository) it runs llama-bench on the same files and prints the ratios
# (LLAMA_ARGS: more llama-bench options, e.g. "--poll 0" on a shared machine,
# where its spinning threads lose their time slices).
# Then an 8B-shaped decode: a 2-layer slice of Llama-3.1-8B's shapes with its
# real (untied) head, `neuromap synth --preset llama-3.1-8b --layers 2`, in
# BF16 and (LLAMA_QUANTIZE) Q4_K_M, extrapolated to the full 32 layers by the
# bytes one decoded token reads (every layer and the head; the embedding
# gives one row): decode streams the weights, so its time scales with them.
# The full model's bytes: Llama-3.1-8B's files as llama.cpp lists them (BF16
# 14.96 GiB, Q4_K_M 4.58 GiB), less the embedding.
# usage: bench/forward.sh [RUNS]   (env: THREADS, default every CPU; KEEP=DIR
#   keeps the models in DIR and reuses them; N_PROMPT (32), N_GEN (16);
#   EXACT=0 skips the exact path; ONLY=1b or ONLY=8b runs one part)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
THREADS=${THREADS:-$(nproc)}
SHARED=${NEUROMAP_SHARED:-../shared}
N_PROMPT=${N_PROMPT:-32}
N_GEN=${N_GEN:-16}
NM=./neuromap
make -s -j2 neuromap >/dev/null
T=$(mktemp -d "${TMPDIR:-/tmp}/nm-bench-fwd.XXXXXX")
trap 'rm -rf "$T"' EXIT
M=${KEEP:-$T}
mkdir -p "$M"
cc -O2 -pthread bench/memread.c -o "$T/memread"

# A prompt of about N_PROMPT tokens: llama-bench's -p N_PROMPT is exactly that many.
PROMPT=$(printf 'Once upon a time, there was a little girl named Lily who loved to play outside in the park with her dog %.0s' $(seq 8) | cut -d" " -f1-$((N_PROMPT - 3)))

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# run MODEL [ARGS...]: sets NP, P (prompt tok/s), D (decode tok/s), medians of
# RUNS; with LLAMA=1 (and LLAMA_BENCH) also LP, LD, llama-bench's on the same
# file, its runs interleaved with ours (one each, in turn), so that both see
# the same machine: on a shared one the load moves within seconds.
run() {
    : >"$T/p"; : >"$T/d"; : >"$T/lp"; : >"$T/ld"
    for _ in $(seq "$RUNS"); do
        [ "${LLAMA:-0}" = 1 ] && llama "$1" && echo "$LP" >>"$T/lp" && echo "$LD" >>"$T/ld"
        "$NM" generate "$@" -p "$PROMPT" -n "$N_GEN" --temp 0 --threads "$THREADS" --stats 2>"$T/err" >/dev/null
        local line; line=$(grep 'tokens/s' "$T/err")
        sed -E 's/.*prompt ([0-9]+) tokens.*\(([0-9.]+) tokens\/s\); generated.*/\2/' <<<"$line" >>"$T/p"
        sed -E 's/.*generated .*\(([0-9.]+) tokens\/s\);.*/\1/' <<<"$line" >>"$T/d"
        NP=$(sed -E 's/.*prompt ([0-9]+) tokens.*/\1/' <<<"$line")
    done
    P=$(median <"$T/p"); D=$(median <"$T/d")
    if [ -s "$T/lp" ] && ! grep -q -- '^-$' "$T/lp"; then LP=$(median <"$T/lp"); LD=$(median <"$T/ld"); else LP=-; LD=-; fi
}

# llama FILE: sets LP, LD (llama-bench's prompt and decode tok/s, one run), or "-"
llama() {
    LP=-; LD=-
    [ -n "${LLAMA_BENCH:-}" ] || return 0
    local out; out=$("$LLAMA_BENCH" -m "$1" -p "$N_PROMPT" -n "$N_GEN" -t "$THREADS" -r 1 ${LLAMA_ARGS:-} -o csv 2>/dev/null) || return 0
    LP=$(awk -F'"?,"?' 'NR>1 && $0 ~ /,"?'"$N_PROMPT"'"?,"?0"?,/ {print $(NF-1)}' <<<"$out" | head -1)
    LD=$(awk -F'"?,"?' 'NR>1 && $0 ~ /,"?0"?,"?'"$N_GEN"'"?,/ {print $(NF-1)}' <<<"$out" | head -1)
}
ratio() { [ "$2" = - ] || [ -z "$2" ] && echo - || awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, $($NM --version | grep kernels);"
echo "  threads $THREADS; median of $RUNS runs; prompt ~$N_PROMPT tokens, $N_GEN generated; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%d)"
echo "  memory read (plain loop, anonymous 1 GiB, $THREADS threads): $("$T/memread" 1024 "$THREADS") GB/s"
printf '%-26s %-6s %6s %10s %10s %10s %10s %8s %8s\n' model path prompt "prompt/s" "decode/s" "ceiling/s" "llama p/s" "ratio p" "ratio d"
S=$SHARED/models/stories260K
run "$S/stories260K.bin" --tokenizer "$S/tok512.bin"
printf '%-26s %-6s %6s %10.1f %10.2f\n' "stories260K (F32)" exact "$NP" "$P" "$D"

make_model() { # DTYPE: the file name on stdout
    local f="$M/l1b-$1.gguf"
    if [ ! -s "$f" ]; then
        if [ "$1" = q4_k_m ]; then
            "$LLAMA_QUANTIZE" "$(make_model bf16)" "$f" Q4_K_M >/dev/null 2>&1
        else
            "$NM" synth "$f" --preset llama-3.2-1b --dtype "$1" --tokenizer "$SHARED/tokenizers/llama-3.1" --force >/dev/null 2>&1
        fi
    fi
    echo "$f"
}

DTYPES="bf16 q8_0"
[ -n "${LLAMA_QUANTIZE:-}" ] && DTYPES="$DTYPES q4_k_m"
for dt in $DTYPES; do
    [ "${ONLY:-1b}" = 8b ] && break
    f=$(make_model "$dt")
    bw=$("$T/memread" 100000 "$THREADS" "$f")
    ceil=$(awk -v bw="$bw" -v s="$(stat -c %s "$f")" 'BEGIN {printf "%.2f", bw * 1e9 / s}')
    LLAMA=1 run "$f"
    printf '%-26s %-6s %6s %10.1f %10.2f %10s %10s %8s %8s\n' "Llama-3.2-1B shape ($dt)" fast "$NP" "$P" "$D" "$ceil" "$LP/$LD" \
        "$(ratio "$P" "$LP")" "$(ratio "$D" "$LD")"
    if [ "${EXACT:-1}" = 1 ]; then
        run "$f" --exact-activations
        printf '%-26s %-6s %6s %10.1f %10.2f\n' "Llama-3.2-1B shape ($dt)" exact "$NP" "$P" "$D"
    fi
done
[ "${ONLY:-8b}" = 1b ] && exit 0

# The 8B slice. embd_bytes DTYPE: its token embedding's bytes (128,256 x 4096;
# Q4_K_M stores it as Q4_K, llama.cpp's choice), read one row per token.
make_slice() { # DTYPE: the file name on stdout
    local f="$M/l8b2-$1.gguf"
    if [ ! -s "$f" ]; then
        if [ "$1" = q4_k_m ]; then
            "$LLAMA_QUANTIZE" "$(make_slice bf16)" "$f" Q4_K_M >/dev/null 2>&1
        else
            "$NM" synth "$f" --preset llama-3.1-8b --layers 2 --dtype "$1" --tokenizer "$SHARED/tokenizers/llama-3.1" --force >/dev/null 2>&1
        fi
    fi
    echo "$f"
}
embd_bytes() { case $1 in bf16) echo $((128256 * 4096 * 2));; q4_k_m) echo $((128256 * 4096 / 256 * 144));; esac; }
full_bytes() { case $1 in bf16) echo 14.96;; q4_k_m) echo 4.58;; esac | awk '{printf "%.0f", $1 * 1073741824}'; }
printf '%-26s %-6s %10s %10s %10s %12s %12s\n' model path "decode/s" "ceiling/s" "llama d/s" "ratio d" "full 8B d/s"
SLICES="bf16"
[ -n "${LLAMA_QUANTIZE:-}" ] && SLICES="$SLICES q4_k_m"
for dt in $SLICES; do
    f=$(make_slice "$dt")
    e=$(embd_bytes "$dt")
    read_b=$(( $(stat -c %s "$f") - e ))                      # what one decoded token reads
    scale=$(awk -v a="$(full_bytes "$dt")" -v e="$e" -v r="$read_b" 'BEGIN {print (a - e) / r}')
    bw=$("$T/memread" 100000 "$THREADS" "$f")
    ceil=$(awk -v bw="$bw" -v r="$read_b" 'BEGIN {printf "%.2f", bw * 1e9 / r}')
    LLAMA=1 run "$f"
    printf '%-26s %-6s %10.2f %10s %10s %12s %12s\n' "Llama-3.1-8B 2-layer ($dt)" fast "$D" "$ceil" "$LD" "$(ratio "$D" "$LD")" \
        "$(awk -v d="$D" -v s="$scale" 'BEGIN {printf "%.2f", d / s}')"
done
