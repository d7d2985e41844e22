#!/usr/bin/env bash
# cli_generate.sh — `neuromap generate`: golden greedy text, JSON shape,
# determinism, clamping, and refusals of bad hooks.
. "$(dirname "$0")/lib.sh"
S=$M/stories260K
BIN=("$S/stories260K.bin" --tokenizer "$S/tok512.bin")
GOLDEN='Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.
Lily'"'"'s mom said, "Lily, let'"'"'s go to the park." Lily was sad and didn'"'"'t know what to do. She said, "I want to play with your ball, but I can'"'"'t find it."'

expect_out '^usage: neuromap generate' "$NM" generate --help
expect_exit 2 'unknown option' "$NM" generate "${BIN[@]}" --bogus
expect_exit 2 'expected one MODEL' "$NM" generate
expect_exit 2 'layer 5 is outside the model.s layers 0-4' "$NM" generate "${BIN[@]}" --clamp 5:0=1
expect_exit 2 'neuron 172 is outside the layer.s neurons 0-171' "$NM" generate "${BIN[@]}" --clamp 4:3,172=1
expect_exit 2 "--scale '4:3=x'" "$NM" generate "${BIN[@]}" --scale 4:3=x
expect_exit 2 'expected LAYER:NEURON=VALUE' "$NM" generate "${BIN[@]}" --clamp 4:3
expect_exit 2 'clamp-site must be up or act' "$NM" generate "${BIN[@]}" --clamp 4:3=1 --clamp-site down
expect_exit 2 'clamp-positions must be all or generated' "$NM" generate "${BIN[@]}" --clamp-positions some
expect_exit 2 "generate: --temp must be a number in 0\\.\\.100, not '-1'" "$NM" generate "${BIN[@]}" --temp -1

# Greedy from BOS reproduces the golden text (131 tokens).
"$NM" generate "${BIN[@]}" --temp 0 -n 131 >"$TMP/golden.txt" 2>"$TMP/err"
expect_eq "$(cat "$TMP/golden.txt")" "$GOLDEN" "greedy stories260K from BOS"

for model in "$S/stories260K.gguf" "$M/stories260K-hf" "$M/stories260K-hf-bf16-sharded"; do
    "$NM" generate "$model" --temp 0 -n 131 >"$TMP/golden.txt" 2>"$TMP/err"
    expect_eq "$(cat "$TMP/golden.txt")" "$GOLDEN" "greedy $model from BOS"
done

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

# Prompts: echoed before the continuation; too long for the context: refused, or --truncate.
expect_out '^Once upon a time, there was' "$NM" generate "${BIN[@]}" -p "Once upon a time" --temp 0 -n 3
LONG=$(printf 'Once upon a time %.0s' $(seq 200))
expect_exit 2 'the prompt has 802 tokens, more than the 511 the model.s context leaves' "$NM" generate "${BIN[@]}" -p "$LONG" -n 5
expect_exit 0 'truncated: its first 295 tokens were dropped' "$NM" generate "${BIN[@]}" -p "$LONG" -n 5 --truncate

# probe: the neuron whose down column writes " named" (0:140), clamped at act = 10,
# lifts P(" named") after "One day, Tom went to the" from ~0 to over 0.1.
PROBE=(probe "${BIN[@]}" -p "One day, Tom went to the" --target " named")
expect_out '^usage: neuromap probe' "$NM" probe --help
expect_exit 2 'needs -p PROMPT and --target TEXT' "$NM" probe "${BIN[@]}" -p "One day"
expect_exit 2 'neuron 172 is outside' "$NM" "${PROBE[@]}" --sweep 0:172=1,2
expect_exit 2 'sweep' "$NM" "${PROBE[@]}" --sweep 0:1=1,,2
"$NM" "${PROBE[@]}" --clamp 0:140=10 --clamp-site act --format json >"$TMP/j" 2>"$TMP/err"
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); b,c=d["baseline"],d["clamped"]; print(d["target_ids"], b["prob"] < 1e-4, c["prob"] > 0.1, len(b["top"]), c["top"][0]["token"] != b["top"][0]["token"])' "$TMP/j")" \
    "[395] True True 10 True" "probe --clamp 0:140=10 --clamp-site act"
# The sweep's rows agree with single probes, and rise with the value.
"$NM" "${PROBE[@]}" --clamp-site act --sweep 0:140=0,5,10 --format tsv >"$TMP/s" 2>"$TMP/err"
expect_eq "$(head -1 "$TMP/s")" "$(printf 'value\tprob')" "sweep TSV header"
expect_eq "$(awk 'NR>1 {print $1}' "$TMP/s" | tr '\n' ' ')" "0 5 10 " "sweep TSV values"
expect_eq "$(awk 'NR>2 && $2 <= p {bad=1} NR>1 {p=$2} END {print bad+0}' "$TMP/s")" "0" "sweep probabilities rise"
expect_eq "$(awk 'NR==4 {print $2}' "$TMP/s")" "$(python3 -c 'import json,sys; print("%.9g" % json.load(open(sys.argv[1]))["clamped"]["prob"])' "$TMP/j")" "sweep at 10 = probe at 10"
expect_out '^ +10 +0\.1[0-9]+ +"[^"]*" +\|#+$' "$NM" "${PROBE[@]}" --clamp-site act --sweep 0:140=0,5,10
# --clamp-positions generated hooks only the last prompt token here: a smaller lift than all.
"$NM" "${PROBE[@]}" --clamp 0:140=10 --clamp-site act --clamp-positions generated --format json >"$TMP/g" 2>"$TMP/err"
expect_eq "$(python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); g=json.load(open(sys.argv[2])); print(a["baseline"]["prob"] < g["clamped"]["prob"] < a["clamped"]["prob"], g["hooks"]["positions"])' "$TMP/j" "$TMP/g")" \
    "True generated" "--clamp-positions generated"
# The up row that decodes to " named" (1:0), clamped at the up site, does not steer.
"$NM" "${PROBE[@]}" --clamp 1:0=10 --clamp-site up --format json >"$TMP/j" 2>"$TMP/err"
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["clamped"]["prob"] < 1e-3, d["hooks"]["site"])' "$TMP/j")" "True up" "up-site clamp of 1:0"

# Continuations: " play" after "She loved to" is the word token the joint text has.
"$NM" probe "${BIN[@]}" -p "She loved to" --target " play" --format json >"$TMP/j" 2>"$TMP/err"
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["prompt_ids"], d["target_ids"])' "$TMP/j")" \
    "[1, 338, 401, 396, 267] [337]" "target ids are the joint tokenization's continuation"
# When the prompt's last token merges with the target, probe says so and uses the joint ids.
expect_exit 0 'change when the target follows; using the joint tokenization' "$NM" probe "${BIN[@]}" -p "One day, Tom went to the pa" --target "rk"
"$NM" probe "${BIN[@]}" -p "She loved to" --target " play" --format tsv >"$TMP/t" 2>/dev/null
expect_eq "$(sed -n 2p "$TMP/t" | cut -f1-4)" "$(printf 'baseline\t0\t337\t play')" "probe TSV target row"

# --kv f16: the KV cache in F16; stories260K's greedy text is the F32 cache's (its keys and values
# move by 2^-11 at most, far inside its top-2 margins here), the probe runs, and a type that is
# none is refused by name.
expect_eq "$("$NM" generate "${BIN[@]}" -p "Once upon a time" -n 24 --temp 0 --kv f16 2>/dev/null)" \
    "$("$NM" generate "${BIN[@]}" -p "Once upon a time" -n 24 --temp 0 2>/dev/null)" "generate --kv f16 greedy text"
expect_out 'target' "$NM" probe "${BIN[@]}" -p "She loved to" --target " play" --kv f16
expect_exit 2 "--kv must be f32 or f16, not 'f8'" "$NM" generate "${BIN[@]}" --kv f8
finish
