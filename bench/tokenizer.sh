#!/usr/bin/env bash
# bench/tokenizer.sh — load the Llama 3.1 tokenizer and encode 1 MB of English
# text (a benchmark, not a test). Prints the median of RUNS runs of each:
# load time (tokenizer.json parse + merge table) and encoding speed, as
# `neuromap tokenize --stats` reports them, for tokenizer.json and GGUF.
#
#   bench/tokenizer.sh [NEUROMAP] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
NM=${1:-./neuromap}
RUNS=${2:-5}
SHARED=${NEUROMAP_SHARED:-../shared}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# 1 MB of deterministic English-like text: words from a fixed list, picked by
# a 32-bit LCG exact in doubles (awk's rand() differs between awks), with punctuation, numbers
# and paragraph breaks.
awk 'BEGIN {
    n = split("the a and of to in was she he it that with for on they but little big day one time said " \
              "Lily Tom happy sad play park ball dog cat tree sun went saw wanted friend mom house very " \
              "because could would after then there once upon named loved found looked asked smiled " \
              "together every morning garden flower water bird sky red blue green tiny huge quickly " \
              "remembered decided everyone nothing something important beautiful adventure 2024 3 17 " \
              "didn'"'"'t can'"'"'t it'"'"'s I'"'"'m we'"'"'re", w, " ")
    s = 12345; bytes = 0; col = 0
    while (bytes < 1048576) {
        s = (s * 69069 + 1) % 4294967296
        word = w[int(s / 65536) % n + 1]
        if (col == 0) word = toupper(substr(word, 1, 1)) substr(word, 2)
        r = int(s / 256) % 100
        sep = r < 8 ? ". " : r < 13 ? ", " : r < 14 ? "!\n\n" : r < 15 ? "?\n" : " "
        if (sep != " ") col = 0; else col++
        printf "%s%s", word, sep
        bytes += length(word) + length(sep)
    }
}' >"$TMP/text.txt"
truncate -s 1048576 "$TMP/text.txt"

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

bench() { # NAME MODEL
    local loads=() cpus=() speeds=()
    for _ in $(seq "$RUNS"); do
        line=$("$NM" tokenize "$2" -f "$TMP/text.txt" --format ids --stats 2>&1 >/dev/null | grep '^load')
        loads+=("$(sed -E 's/^load ([0-9.]+) s.*/\1/' <<<"$line")")
        cpus+=("$(sed -E 's/^load [0-9.]+ s \(([0-9.]+) s CPU\).*/\1/' <<<"$line")")
        speeds+=("$(sed -E 's/.*\(([0-9.]+) MB\/s\)/\1/' <<<"$line")")
    done
    tokens=$(sed -E 's/.* into ([0-9]+) tokens.*/\1/' <<<"$line")
    printf '%-26s load %6.3f s (%5.3f s CPU)   encode %6.2f MB/s   (%s tokens, median of %d)\n' "$1" \
        "$(printf '%s\n' "${loads[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)" \
        "$(printf '%s\n' "${speeds[@]}" | median)" "$tokens" "$RUNS"
}

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "text: $(wc -c <"$TMP/text.txt") bytes, sha256 $(sha256sum "$TMP/text.txt" | cut -c1-16)"
bench "llama-3.1 tokenizer.json" "$SHARED/tokenizers/llama-3.1"
bench "llama-bpe.gguf" "$SHARED/tokenizers/vectors/ggml-vocab-llama-bpe.gguf"
