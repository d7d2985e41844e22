# tests/cli_readme_repro.sh — README's "Reproducing Flash Interpretability"
# block, extracted from README.md and run exactly as written, on two
# synthetic stand-ins for Llama 3.1 8B and 8B Instruct: the real Llama 3.1
# tokenizer and chat template, planted " dog" and " California" neurons, and
# an "Instruct" that re-plants two more up neurons (so exactly 2 of 384 change).
source "$(dirname "$0")/lib.sh"
NM_ABS=$(cd "$(dirname "$NM")" && pwd)/$(basename "$NM")
TOKDIR=$SHARED/tokenizers/llama-3.1
PLANT=(--plant 1:5=" dog" --plant 0:9=" California" --plant-matrix up --seed 3)
expect_exit 0 '' "$NM" synth "$TMP/base" --tokenizer "$TOKDIR" "${PLANT[@]}"
expect_exit 0 '' "$NM" synth "$TMP/instruct" --tokenizer "$TOKDIR" "${PLANT[@]}" --plant 1:7=" cat" --plant 0:3=" puppy"

# the block between the README's repro markers, with the two paths pointed at the stand-ins
sed -n '/^<!-- repro:begin -->$/,/^<!-- repro:end -->$/p' README.md | sed '/^<!--/d; /^```/d' |
    sed "s|^BASE=.*|BASE=$TMP/base|; s|^INSTRUCT=.*|INSTRUCT=$TMP/instruct|" >"$TMP/repro.sh"
expect_eq "$(grep -c '^neuromap ' "$TMP/repro.sh")" 7 "README block: 7 neuromap commands"
expect_eq "$(grep -c '^BASE=\|^INSTRUCT=' "$TMP/repro.sh")" 2 "README block sets BASE and INSTRUCT"

(cd "$TMP" && neuromap() { "$NM_ABS" "$@"; } && set -e -o pipefail && source "$TMP/repro.sh") >"$TMP/repro.out" 2>"$TMP/repro.err"
expect_eq "$?" 0 "the README block runs: $(tail -c 300 "$TMP/repro.err")"
# find: the planted neurons head their lists
expect_eq "$(grep -E -m1 '^up +[0-9]+ +[0-9]+ .*" dog"' "$TMP/repro.out" | awk '{ print $2 ":" $3 }')" 1:5 "find names the dog neuron"
expect_eq "$(grep -E -m1 '^up +[0-9]+ +[0-9]+ .*" California"' "$TMP/repro.out" | awk '{ print $2 ":" $3 }')" 0:9 "find names the California neuron"
# diff: exactly the two re-planted neurons changed
if grep -Eq '^up +384 +382 +99\.48%' "$TMP/repro.out"; then ok; else fail "diff: 382 of 384 keep their top-1: $(grep -E '^up +384' "$TMP/repro.out")"; fi
expect_eq "$(grep -cE '^up +[01] +[37] .*" (cat|puppy)" [0-9.]+ *$' "$TMP/repro.out")" 2 "the changed neurons are the re-planted ones"
if [ -s "$TMP/base-vs-instruct.svg" ] && grep -q 'base\.db vs instruct\.db' "$TMP/base-vs-instruct.svg"; then ok; else fail "diff --plot wrote the chart"; fi
# probe and generate ran the chat with the dog neuron clamped
if grep -q '1:5' "$TMP/repro.out" && grep -qi 'clamp' "$TMP/repro.out"; then ok; else fail "probe/generate report the clamp on 1:5: $(tail -c 400 "$TMP/repro.out")"; fi
finish
