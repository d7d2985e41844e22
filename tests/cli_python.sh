#!/usr/bin/env bash
# cli_python.sh — the Python binding (python/neuromap, over BUILD/libneuromap.so)
# against this build's neuromap: pytest runs python/tests, and its counts become
# the closing line. Skipped (counted as such) without numpy and pytest (Debian:
# python3-numpy python3-pytest), and in the sanitizer build: an ASan library
# cannot be loaded into an unsanitized python.
NM=${1:?usage: cli_python.sh NEUROMAP_BINARY}
BUILD=$(dirname "$NM")
skip() { echo "cli_python: skipped: $1"; echo "cli_python: 0 passed, 0 failed, 1 skipped"; exit 0; }
case "$(basename "$BUILD")" in asan | fuzz) skip "the $(basename "$BUILD") build's library needs a sanitized python" ;; esac
PY=
for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c "import numpy, pytest" 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || skip "no python3 with numpy and pytest (apt-get install python3-numpy python3-pytest)"
[ -f "$BUILD/libneuromap.so" ] || { echo "cli_python: $BUILD/libneuromap.so not built"; echo "cli_python: 0 passed, 1 failed"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
NEUROMAP_BIN="$NM" NEUROMAP_LIB="$BUILD/libneuromap.so" NEUROMAP_SHARED=${NEUROMAP_SHARED:-../shared} \
    PYTHONDONTWRITEBYTECODE=1 "$PY" -m pytest -q -p no:cacheprovider python/tests >"$out" 2>&1
rc=$?
cat "$out"
summary=$(grep -E '^[=]* ?[0-9]+ (passed|failed|error|skipped)' "$out" | tail -n 1)
count() { grep -oE "[0-9]+ $1" <<<"$summary" | grep -oE '[0-9]+' || echo 0; }
passed=$(count passed) failed=$(( $(count failed) + $(count error) )) skipped=$(count skipped)
[ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1 # pytest broke before counting
echo "cli_python: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
