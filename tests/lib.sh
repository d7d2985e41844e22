# tests/lib.sh — helpers for the command-line tests (tests/cli_*.sh).
# Each script is run as: bash tests/cli_X.sh NEUROMAP_BINARY, from the repo root.
NM=${1:?usage: cli_X.sh NEUROMAP_BINARY}
SHARED=${NEUROMAP_SHARED:-../shared}
M=$SHARED/models
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PASSED=0
FAILED=0
SKIPPED=0

ok()   { PASSED=$((PASSED + 1)); }
fail() { FAILED=$((FAILED + 1)); echo "FAIL ${BASH_SOURCE[1]}:${BASH_LINENO[0]}: $*" >&2; }
# skip [N] REASON: N checks (default 1) that cannot run here; counted and said, not passed.
skip() {
    local n=1
    if [[ $1 =~ ^[0-9]+$ ]]; then n=$1; shift; fi
    SKIPPED=$((SKIPPED + n))
    echo "SKIP ${BASH_SOURCE[1]}:${BASH_LINENO[0]}: $n check(s): $*"
}

# expect_exit CODE PATTERN CMD...: exit status CODE and stderr matching PATTERN (extended regex).
expect_exit() {
    local code=$1 pat=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ "$rc" -ne "$code" ]; then fail "$* exited $rc, want $code: $(head -c 300 "$TMP/err")"; return; fi
    if [ -n "$pat" ] && ! grep -Eq -- "$pat" "$TMP/err"; then fail "$*: stderr lacks /$pat/: $(head -c 300 "$TMP/err")"; return; fi
    ok
}

# expect_out PATTERN CMD...: exit 0 and stdout matching PATTERN.
expect_out() {
    local pat=$1; shift
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ "$rc" -ne 0 ]; then fail "$* exited $rc: $(head -c 300 "$TMP/err")"; return; fi
    if ! grep -Eq -- "$pat" "$TMP/out"; then fail "$*: stdout lacks /$pat/"; return; fi
    ok
}

# expect_eq A B MESSAGE
expect_eq() { if [ "$1" == "$2" ]; then ok; else fail "$3: got '$1', want '$2'"; fi; }

finish() { echo "$(basename "$0" .sh): $PASSED passed, $FAILED failed, $SKIPPED skipped"; [ "$FAILED" -eq 0 ]; }
