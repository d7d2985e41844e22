#!/usr/bin/env bash
# tests/run.sh BUILD_DIR... — runs every C test (BUILD_DIR/tests/test_*) and
# every command-line test (tests/cli_*.sh against BUILD_DIR/neuromap) in each
# build (BUILD_DIR:c: the C tests only — for the portable build, build/nox86,
# the one other architectures get: that it builds and its kernels compute
# right; its command line is the other builds'), then prints one closing
# line "N passed, N failed, N skipped". A test
# ends with "NAME: N passed, N failed" or "NAME: N passed, N failed, N skipped"
# (checks it could not run here: a missing tool or fixture).
#
# The builds run side by side (the optimised one and the sanitizer one): much
# of a suite waits — on servers, mpirun, the browser, python — so two suites
# share two cores well. Each build's lines are printed when it ends, each test
# with its wall seconds. TEST_SERIAL=1 runs the builds one after the other.
# Tests keep their files in their own temporary folders; the one shared
# product, the fuzz build, is made under a lock (cli_fuzz_smoke.sh).
cd "$(dirname "$0")/.." || exit 1
export NEUROMAP_SHARED=${NEUROMAP_SHARED:-../shared}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ ! -d "$NEUROMAP_SHARED/models" ]; then
    echo "test data not found at $NEUROMAP_SHARED (set NEUROMAP_SHARED)" >&2
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; } # wall seconds since $1

# suite BUILD: every test of one build; prints a line per test (and the tail
# of a failing test's output), then "TOTAL passed failed skipped broken...".
suite() {
    local build=${1%:c} c_only=0 mode passed=0 failed=0 skipped=0 broken=() t s out rc t0
    [ "$build" != "$1" ] && c_only=1
    mode=$(basename "$build")
    tally() { # NAME OUTPUT_FILE RC SECONDS
        local line p f s
        line=$(grep -E '^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed' "$2" | tail -n 1)
        p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
        s=0
        if [[ $line =~ failed,\ ([0-9]+)\ skipped ]]; then s=${BASH_REMATCH[1]}; fi
        if [ -z "$line" ]; then p=0 f=1; fi
        if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi  # crashed after its summary, or sanitizer report
        passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
        [ "$f" -ne 0 ] && broken+=("$1")
        printf '%-40s %6.1f s  %s\n' "$1" "$4" "${line:-no summary (exit $3)}"
    }
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        out=$(mktemp) t0=$EPOCHREALTIME
        "$t" >"$out" 2>&1; rc=$?
        [ "$rc" -ne 0 ] && tail -n 30 "$out"
        tally "$mode/$(basename "$t")" "$out" "$rc" "$(elapsed "$t0")"; rm -f "$out"
    done
    for s in tests/cli_*.sh; do
        [ -f "$s" ] && [ "$c_only" = 0 ] || continue
        out=$(mktemp) t0=$EPOCHREALTIME
        bash "$s" "$build/neuromap" >"$out" 2>&1; rc=$?
        [ "$rc" -ne 0 ] && tail -n 30 "$out"
        tally "$mode/$(basename "$s" .sh)" "$out" "$rc" "$(elapsed "$t0")"; rm -f "$out"
    done
    echo "TOTAL $passed $failed $skipped ${broken[*]}"
}

logs=() pids=()
for build in "$@"; do
    log=$(mktemp)
    logs+=("$log")
    if [ "${TEST_SERIAL:-0}" = 1 ]; then suite "$build" >"$log" 2>&1; grep -v '^TOTAL ' "$log"
    else suite "$build" >"$log" 2>&1 & pids+=($!)
    fi
done
for i in "${!pids[@]}"; do wait "${pids[$i]}"; grep -v '^TOTAL ' "${logs[$i]}"; done

passed=0 failed=0 skipped=0 broken=()
for log in "${logs[@]}"; do
    read -r _ p f s b < <(grep '^TOTAL ' "$log" || echo "TOTAL 0 1 0 a-suite-that-did-not-finish")
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    [ -n "$b" ] && broken+=($b)
    rm -f "$log"
done
[ ${#broken[@]} -gt 0 ] && echo "failing: ${broken[*]}" >&2
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
