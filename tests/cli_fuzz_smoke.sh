# cli_fuzz_smoke.sh — replays the committed fuzz regression inputs
# (tests/fuzz-regressions/TARGET/) through every libFuzzer target, one check
# per target, so a parser change that brings back an old crash, hang, leak or
# sanitizer report fails CI. Where clang lacks libFuzzer, those checks are
# reported as skipped (tests/run.sh counts them).
source "$(dirname "$0")/lib.sh"

if ! printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' |
    ${FUZZ_CC:-clang} -x c -fsanitize=fuzzer - -o "$TMP/probe" 2>/dev/null; then
    # the build and one replay per target: the checks that cannot run here
    skip $((1 + $(ls fuzz/fuzz_*.c | wc -l))) "clang with libFuzzer not found: fuzz build and smoke replays skipped"
    finish
    exit
fi
# The fuzz build and fuzz/out/ are shared by the builds' suites, which
# tests/run.sh runs side by side: one at a time, under a lock.
mkdir -p build
exec 9>build/.fuzz.lock
flock 9
# A make of its own: the outer make's jobserver does not reach this script.
if env -u MAKEFLAGS -u MAKELEVEL make -s -j2 fuzz-build >"$TMP/build.log" 2>&1; then ok; else fail "make fuzz-build: $(tail -n 20 "$TMP/build.log")"; fi

for src in fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    # 60 s of wall clock: about 3 s of CPU (loading the Llama 3 tokenizers) on a loaded CI machine.
    if fuzz/run.sh smoke 60 "$t" >"$TMP/smoke.log" 2>&1; then ok; else fail "$(cat "$TMP/smoke.log")"; fi
    cat "$TMP/smoke.log"
done
finish
