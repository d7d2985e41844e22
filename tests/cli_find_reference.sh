# tests/cli_find_reference.sh — find on a model lists the neurons an
# independent double-precision computation ranks first (tests/l2c_ref.py:
# plain Python over the .bin), in its order, except where two neurons are a
# near-tie (logits within 2e-5 of each other, FP32 rounding of a 64-term dot
# product): issue 13, item 9 — the ranking and the decode use one kernel, so
# no neuron can drop out of the list between the two.
source "$(dirname "$0")/lib.sh"
B=$M/stories260K
L2C=("$B/stories260K.bin" --tokenizer "$B/tok512.bin")
REF=(python3 "$(dirname "$0")/l2c_ref.py" "$B/stories260K.bin")

# compare TOKEN_TEXT TOKEN_ID MATRIX LIMIT
compare() {
    "$NM" find "${L2C[@]}" "$1" --matrix "$3" --limit "$4" --format tsv >"$TMP/f.tsv" 2>/dev/null
    local m=$3; [ "$m" = all ] && m=up,gate,down
    "${REF[@]}" rank "$2" "$m" $(($4 + 10)) >"$TMP/ref.txt"
    python3 - "$TMP/f.tsv" "$TMP/ref.txt" "$4" <<'PY'
import sys
found = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()[1:]]
ref = [l.split() for l in open(sys.argv[2])]
limit = int(sys.argv[3])
exact = {(r[0], int(r[1]), int(r[2])): float(r[3]) for r in ref}
problems = []
if len(found) != limit: problems.append("listed %d, want %d" % (len(found), limit))
for i, f in enumerate(found):
    key, x = (f[0], int(f[1]), int(f[2])), float(f[4 - 1])
    want = (ref[i][0], int(ref[i][1]), int(ref[i][2]))
    if key not in exact:
        problems.append("#%d %s is not among the reference's best" % (i + 1, key)); continue
    if abs(x - exact[key]) > 1e-4 * (1 + abs(exact[key])):
        problems.append("#%d %s logit %g, reference %r" % (i + 1, key, x, exact[key]))
    if key != want and abs(exact[key] - exact[want]) > 2e-5:
        problems.append("#%d is %s (%r), the reference has %s (%r)" % (i + 1, key, exact[key], want, exact[want]))
print("ok" if not problems else "; ".join(problems[:5]))
PY
}

expect_eq "$(compare " the" 265 all 40)" ok '" the", every matrix'
expect_eq "$(compare " Lily" 317 up 25)" ok '" Lily", up'
expect_eq "$(compare "st" 356 down 25)" ok '"st", down'
expect_eq "$(compare "." 426 gate 25)" ok '".", gate'
finish
