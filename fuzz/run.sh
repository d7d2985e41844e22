#!/usr/bin/env bash
# fuzz/run.sh — drives the libFuzzer targets built by `make fuzz-build`.
#
#   fuzz/run.sh campaign SECONDS TARGET...   fuzz each target in turn (nice 19, one at a
#                                            time) for SECONDS or $FUZZ_RUNS executions
#                                            (1 million), seeded from ../shared and from
#                                            tests/fuzz-regressions/TARGET; results in fuzz/out/
#   fuzz/run.sh smoke SECONDS TARGET...      replay tests/fuzz-regressions/TARGET/* once
#                                            (at most SECONDS per target); exit 1 on any failure
#
# TARGET is a binary name (fuzz_llama2c); its regression inputs live in
# tests/fuzz-regressions/llama2c/. Inputs that hold several files separate them
# with the marker in fuzz/fuzz.h (FUZZ_SEP); frame() below writes them.
set -u
cd "$(dirname "$0")/.." || exit 1
mode=${1:?usage: fuzz/run.sh campaign|smoke SECONDS TARGET...}
seconds=${2:?seconds}
shift 2
SHARED=${NEUROMAP_SHARED:-../shared}
M=$SHARED/models
OUT=fuzz/out
REG=tests/fuzz-regressions
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# frame OUT FILE...: the files joined by FUZZ_SEP ("-" stands for an empty file).
frame() {
    local out=$1 first=1 f
    shift
    for f in "$@"; do
        [ $first = 1 ] || printf '\n--8<--\n'
        first=0
        [ "$f" = - ] || cat "$f"
    done >"$out"
}

# seeds TARGET DIR: the fixtures from ../shared a target starts from.
seeds() {
    local d=$2 hf=$M/stories260K-hf sh=$M/stories260K-hf-bf16-sharded
    case $1 in
    fuzz_llama2c)
        frame "$d/stories260K" "$M/stories260K/stories260K.bin" "$M/stories260K/tok512.bin"
        frame "$d/dogs" "$M/stories260K-dogs/stories260K-dogs.bin" "$M/stories260K/tok512.bin" ;;
    fuzz_llama2c_tokenizer)
        { printf '\000\002'; cat "$M/stories260K/tok512.bin"; } >"$d/tok512" ;;
    fuzz_tokenize)  # flags byte 0: plain text, first vocabulary
        local f
        for f in "$SHARED"/tokenizers/vectors/*.inp "$M/stories260K-hf/tokenizer_vectors.jsonl"; do
            { printf '\000'; cat "$f"; } >"$d/$(basename "$f")"
        done ;;
    fuzz_gguf)
        cp "$M/stories260K/stories260K.gguf" "$M/quant/stories260K-q8_0.gguf" "$d/" ;;
    fuzz_hf)  # config.json, model.safetensors, tokenizer.json, index, shard 1, shard 2
        frame "$d/stories260K-hf" "$hf/config.json" "$hf/model.safetensors" "$hf/tokenizer.json"
        frame "$d/bf16-sharded" "$sh/config.json" - "$sh/tokenizer.json" "$sh/model.safetensors.index.json" \
            "$sh/model-00001-of-00002.safetensors" "$sh/model-00002-of-00002.safetensors" ;;
    esac
}

# stat LOG KEY: a number from libFuzzer's output.
last_stat() { grep -Eo "$2: *[0-9]+" "$1" | tail -n 1 | grep -Eo '[0-9]+$'; }

campaign() {
    local t=$1 name=${1#fuzz_} bin=build/fuzz/$1
    local corpus=$OUT/corpus/$name arts=$OUT/artifacts/$name log=$OUT/logs/$name.log dict=fuzz/$name.dict
    mkdir -p "$corpus" "$arts" "$OUT/logs"
    seeds "$t" "$corpus"
    [ -d "$REG/$name" ] && cp "$REG/$name"/* "$corpus/" 2>/dev/null
    local max_len  # libFuzzer caps its guess at 1 MB, which would cut the fixtures short
    max_len=$(find "$corpus" -type f -printf '%s\n' | sort -n | tail -n 1)
    # -timeout is generous: at nice 19 on a shared machine a 0.1 s input can wait many seconds for a CPU.
    # Stops at SECONDS or FUZZ_RUNS executions (default 1 million), whichever comes first.
    local args=(-max_total_time="$seconds" -runs="${FUZZ_RUNS:-1000000}" -max_len="$((max_len > 4096 ? max_len : 4096))" -timeout=60 -rss_limit_mb=2048 -malloc_limit_mb=512
                -print_final_stats=1 -artifact_prefix="$arts/")
    [ -f "$dict" ] && args+=(-dict="$dict")
    echo "fuzzing $name for ${seconds}s (log: $log)" >&2
    nice -n 19 "$bin" "${args[@]}" "$corpus" >"$log" 2>&1
    local rc=$? execs cov ft found
    execs=$(last_stat "$log" stat::number_of_executed_units)
    cov=$(last_stat "$log" cov)
    ft=$(last_stat "$log" ft)
    found=$(find "$arts" -type f | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$seconds" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$found" "$rc" \
        | tee -a "$OUT/summary.tsv"
}

smoke() {
    local t=$1 name=${1#fuzz_} bin=build/fuzz/$1 files
    files=("$REG/$name"/*)
    [ -e "${files[0]}" ] || { echo "$name: no regression inputs"; return 0; }
    if timeout "$seconds" "$bin" -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=512 "${files[@]}" >"$OUT/smoke-$name.log" 2>&1; then
        echo "$name: ${#files[@]} inputs ok"
    else
        [ $? -eq 124 ] && echo "$name: still running after ${seconds}s"
        echo "$name: FAILED (see $OUT/smoke-$name.log)"
        tail -n 30 "$OUT/smoke-$name.log"
        return 1
    fi
}

mkdir -p "$OUT"
failed=0
for t in "$@"; do
    case $mode in
    campaign) campaign "$t" ;;
    smoke) smoke "$t" || failed=1 ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
    esac
done
exit $failed
