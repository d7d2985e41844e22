# cli_find_agreement.sh — `find --agreement`: what each listed neuron reads
# (up row) against what it writes (down column), checked against an
# independent double-precision decode and with `diff --matrices up,down`.
source "$(dirname "$0")/lib.sh"
B=$M/stories260K
L2C=("$B/stories260K.bin" --tokenizer "$B/tok512.bin")

expect_out $'^up\t0\t104\t[0-9.]+\t1\tst\tdown\tst\t1$' "$NM" find "${L2C[@]}" "st" --matrix up --agreement --format tsv --limit 5
expect_out $'^matrix\tlayer\tneuron\tlogit\trank\ttop_token\tpartner\tpartner_top\tagree$' "$NM" find "${L2C[@]}" " named" --matrix down --agreement --format tsv --limit 3

# Every neuron's top token and its partner's, against an independent
# double-precision decode of the .bin (tests/l2c_ref.py: plain Python, no
# neuromap code), except where the reference's top-1/top-2 margin is a
# near-tie (< 2e-5) that FP32 may order either way.
"$NM" find "${L2C[@]}" " named" --matrix all --agreement --format json --limit 8 >"$TMP/f.json" 2>/dev/null
expect_eq "$(python3 - "$TMP/f.json" "$(dirname "$0")/l2c_ref.py" "$B/stories260K.bin" <<'PY'
import json, subprocess, sys
d = json.load(open(sys.argv[1]))
def top1(matrix, layer, neuron):
    out = subprocess.run([sys.executable, sys.argv[2], sys.argv[3], "top1", matrix, str(layer), str(neuron)],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1])
bad = []
for n in d["neurons"]:
    for side, matrix, got in (("own", n["matrix"], n["top"]["token_id"]),
                              ("partner", n["partner"]["matrix"], n["partner"]["top"]["token_id"])):
        want, margin = top1(matrix, n["layer"], n["neuron"])
        if got != want and margin >= 2e-5:
            bad.append("%s %d:%d %s top %d, reference %d" % (n["matrix"], n["layer"], n["neuron"], side, got, want))
    if n["partner"]["agree"] != (n["top"]["token_id"] == n["partner"]["top"]["token_id"]):
        bad.append("agree flag of %s %d:%d" % (n["matrix"], n["layer"], n["neuron"]))
print(len(d["neurons"]), "; ".join(bad) or "ok")
PY
)" "8 ok" "top and partner top tokens match the independent reference"

# 0:132 reads and writes "ou" (diff --matrices up,down lists it): find marks it.
expect_exit 0 "" "$NM" find "${L2C[@]}" "ou" --matrix up --agreement --format tsv --limit 3
if grep -qP '^up\t0\t132\t.*\tou\tdown\tou\t1$' "$TMP/out"; then ok; else fail "find ou --agreement lacks 0:132 reading and writing ou: $(cat "$TMP/out")"; fi
"$NM" map "${L2C[@]}" --layers 0 -o "$TMP/a.atlas.db" 2>/dev/null
expect_exit 2 "needs the model" "$NM" find "$TMP/a.atlas.db" "ou" --agreement
finish
