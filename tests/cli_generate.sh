#!/usr/bin/env bash
# cli_generate.sh — `neuromap generate`: golden greedy text, JSON shape,
# determinism, clamping, and refusals of bad hooks.
. "$(dirname "$0")/lib.sh"
S=$M/stories260K
BIN=("$S/stories260K.bin" --tokenizer "$S/tok512.bin")
GOLDEN='Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.
Lily'"'"'s mom said, "Lily, let'"'"'s go to the park." Lily was sad and didn'"'"'t know what to do. She said, "I want to play with your ball, but I can'"'"'t find it."'

expect_out '^usage: neuromap generate' "$NM" generate --help
expect_exit 2 'unknown or incomplete option' "$NM" generate "${BIN[@]}" --bogus
expect_exit 2 'expected one MODEL' "$NM" generate
expect_exit 2 'layer 5 is outside the model.s layers 0-4' "$NM" generate "${BIN[@]}" --clamp 5:0=1
expect_exit 2 'neuron 172 is outside the layer.s neurons 0-171' "$NM" generate "${BIN[@]}" --clamp 4:3,172=1
expect_exit 2 "--scale '4:3=x'" "$NM" generate "${BIN[@]}" --scale 4:3=x
expect_exit 2 'expected LAYER:NEURON=VALUE' "$NM" generate "${BIN[@]}" --clamp 4:3
expect_exit 2 'clamp-site must be up or act' "$NM" generate "${BIN[@]}" --clamp 4:3=1 --clamp-site down
expect_exit 2 'clamp-positions must be all or generated' "$NM" generate "${BIN[@]}" --clamp-positions some
expect_exit 2 'temperature' "$NM" generate "${BIN[@]}" --temp -1

# Greedy from BOS reproduces the golden text (131 tokens).
"$NM" generate "${BIN[@]}" --temp 0 -n 131 >"$TMP/golden.txt" 2>"$TMP/err"
expect_eq "$(cat "$TMP/golden.txt")" "$GOLDEN" "greedy stories260K from BOS"

# JSON: prompt_ids is BOS, baseline only without a hook; ids count -n.
"$NM" generate "${BIN[@]}" --temp 0 -n 5 --format json >"$TMP/j" 2>"$TMP/err"
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["prompt_ids"], d["baseline"]["ids"], repr(d["baseline"]["text"]), "clamped" in d)' "$TMP/j")" \
    "[1] [403, 407, 261, 378, 432] 'Once upon a time,' False" "generate --format json"

# Same seed and threads: same text; another seed: another text.
"$NM" generate "${BIN[@]}" --seed 7 -n 60 --threads 2 >"$TMP/a" 2>/dev/null
"$NM" generate "${BIN[@]}" --seed 7 -n 60 --threads 2 >"$TMP/b" 2>/dev/null
"$NM" generate "${BIN[@]}" --seed 8 -n 60 --threads 2 >"$TMP/c" 2>/dev/null
expect_eq "$(cat "$TMP/a")" "$(cat "$TMP/b")" "same seed, same text"
if cmp -s "$TMP/a" "$TMP/c"; then fail "seeds 7 and 8 gave the same 60 tokens"; else ok; fi
"$NM" generate "${BIN[@]}" --seed 7 -n 60 --threads 1 >"$TMP/d" 2>/dev/null
expect_eq "$(cat "$TMP/d")" "$(cat "$TMP/a")" "1 and 2 threads, same text"

# A clamp on the neuron whose down column writes " named" (4:149) at the act
# site puts " named" into the text; JSON then holds both runs, same seed.
"$NM" generate "${BIN[@]}" --temp 0 -n 20 --clamp 4:149=20 --clamp-site act --format json >"$TMP/j" 2>"$TMP/err"
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["baseline"]["ids"][:5], " named" in d["clamped"]["text"], " named" in d["baseline"]["text"][:8], d["hooks"]["site"])' "$TMP/j")" \
    "[403, 407, 261, 378, 432] True False act" "clamped JSON"
# --scale L:N=1 changes nothing; --compare prints both.
"$NM" generate "${BIN[@]}" --temp 0 -n 30 --scale 4:149=1 --format json >"$TMP/j" 2>/dev/null
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["baseline"]==d["clamped"])' "$TMP/j")" "True" "--scale 1 is the identity"
expect_out '^=== clamped \(clamp 4:149=20, site act\)' "$NM" generate "${BIN[@]}" --temp 0 -n 10 --clamp 4:149=20 --clamp-site act --compare
finish
