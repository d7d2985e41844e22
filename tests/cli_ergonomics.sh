# tests/cli_ergonomics.sh — issue 19 from the command line: diff --token (its
# values are test_token_diff.c's, checked there against a double-precision
# reference; here the command's text, formats and atlases), tokens as the
# user has them (#ID, a stored piece, text), and the refusals.
source "$(dirname "$0")/lib.sh"
BIN=$M/stories260K/stories260K.bin
DOGS=$M/stories260K-dogs/stories260K-dogs.bin
TOK=(--tokenizer "$M/stories260K/tok512.bin")

# ---- diff --token: one token, three spellings, one answer ----------------------
"$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --token " do" --matrix all --format tsv >"$TMP/do.tsv" 2>/dev/null
expect_eq "$?" 0 "diff --token exits 0"
expect_eq "$(head -1 "$TMP/do.tsv")" "$(printf 'matrix\tlayer\tneuron\tlogit_a\tlogit_b\tdelta\trank_a\trank_b\tprob_a\tprob_b')" "TSV header"
expect_eq "$(tail -n +2 "$TMP/do.tsv" | wc -l)" 2580 "TSV: every neuron"
expect_eq "$(awk -F'\t' 'NR > 2 && $6 > prev + 1e-6 { bad++ } NR > 1 { prev = $6 } END { print bad + 0 }' "$TMP/do.tsv")" 0 "TSV ranked by falling delta"
expect_eq "$(awk -F'\t' 'NR > 1 { d = $5 - $4 - $6; if (d > 1e-5 || d < -1e-5) bad++ } END { print bad + 0 }' "$TMP/do.tsv")" 0 "delta = logit_b - logit_a"
for spelling in "#400" "▁do"; do
    "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --token "$spelling" --matrix all --format tsv >"$TMP/sp.tsv" 2>/dev/null
    if cmp -s "$TMP/do.tsv" "$TMP/sp.tsv"; then ok; else fail "--token '$spelling' differs from --token ' do'"; fi
done
expect_out '^token 400 " do", norm full, layers 0-4: 860 neurons compared, ranked by logit increase first$' \
    "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --token " do" --limit 3
expect_eq "$(grep -Ec '^up +[0-9]+ +[0-9]+ ' "$TMP/out")" 3 "--limit 3: three rows"
# --reverse: the last TSV row first
"$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --token " do" --matrix all --format tsv --reverse >"$TMP/rev.tsv" 2>/dev/null
expect_eq "$(sed -n 2p "$TMP/rev.tsv" | cut -f1-3)" "$(tail -1 "$TMP/do.tsv" | cut -f1-3)" "--reverse starts with the largest decrease"
# --by rank: places gained
"$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --token " do" --format tsv --by rank >"$TMP/rank.tsv" 2>/dev/null
expect_eq "$(awk -F'\t' 'NR > 1 && $6 != $7 - $8 { bad++ } NR > 2 && $6 > prev { bad++ } NR > 1 { prev = $6 } END { print bad + 0 }' "$TMP/rank.tsv")" 0 \
    "--by rank: delta = rank_a - rank_b, falling"
# JSON
expect_out '^\{"a":.*"token_id":400,"token":" do","norm":"full","by":"prob","reverse":false,.*"n_compared":860,"not_stored":0,"nonfinite":0,"neurons":\[\{"matrix":"up"' \
    "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --token " do" --by prob --format json --limit 2
expect_eq "$(grep -o '"prob_b"' "$TMP/out" | wc -l)" 2 "JSON: --limit 2 neurons"

# ---- from atlases: only where the stored lists hold the token -----------------
"$NM" map "$BIN" "${TOK[@]}" -o "$TMP/a.db" --matrix all --top-k 40 --bottom-k 10 2>/dev/null
"$NM" map "$DOGS" "${TOK[@]}" -o "$TMP/b.db" --matrix all --top-k 40 --bottom-k 10 2>/dev/null
"$NM" diff "$TMP/a.db" "$TMP/b.db" --token " do" --matrix all --format tsv >"$TMP/at.tsv" 2>/dev/null
expect_eq "$?" 0 "diff --token on atlases exits 0"
# which neurons can be compared follows from the exact ranks: both sides in the top 40 or the bottom 10
want=$(awk -F'\t' 'NR > 1 && ($7 <= 40 || $7 > 502) && ($8 <= 40 || $8 > 502)' "$TMP/do.tsv" | wc -l)
expect_eq "$(tail -n +2 "$TMP/at.tsv" | wc -l)" "$want" "atlases: the neurons whose stored lists hold the token on both sides"
join_ok=$(awk -F'\t' 'FNR == 1 { next } NR == FNR { r[$1" "$2" "$3] = $7" "$8; l[$1" "$2" "$3] = $4; next }
    { k = $1" "$2" "$3; if (r[k] != $7" "$8 || (l[k] - $4) > 1e-5 || ($4 - l[k]) > 1e-5) bad++ } END { print bad + 0 }' "$TMP/do.tsv" "$TMP/at.tsv")
expect_eq "$join_ok" 0 "atlases: the same ranks and logits as the models"
expect_out "^not compared: $((2580 - want)) neurons whose stored lists lack the token on one side or both \(atlas\)$" \
    "$NM" diff "$TMP/a.db" "$TMP/b.db" --token "#400" --matrix all
expect_out '^token 400 " do"' "$NM" diff "$TMP/a.db" "$TMP/b.db" --token "▁do"

# ---- refusals ----------------------------------------------------------------
expect_exit 2 'is 2 tokens: " dog" \+ "s"|is [0-9]+ tokens' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --token " dogs"
expect_exit 2 'outside the vocabulary' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --token "#512"
expect_exit 2 'go with --token' "$NM" diff "$BIN" "$DOGS" "${TOK[@]}" --by rank
expect_exit 2 'not one token of the atlas' "$NM" diff "$TMP/a.db" "$TMP/b.db" --token " dogs and cats"


# ---- find: --by, and the token as the user has it -------------------------------
"$NM" find "$BIN" " do" "${TOK[@]}" --matrix all --limit 5 --format tsv >"$TMP/f.tsv" 2>/dev/null
expect_eq "$(head -1 "$TMP/f.tsv")" "$(printf 'matrix\tlayer\tneuron\tlogit\trank\ttop_token')" "find TSV without --by: the columns as before"
for spelling in "#400" "▁do"; do
    "$NM" find "$BIN" "$spelling" "${TOK[@]}" --matrix all --limit 5 --format tsv >"$TMP/f2.tsv" 2>/dev/null
    if cmp -s "$TMP/f.tsv" "$TMP/f2.tsv"; then ok; else fail "find '$spelling' differs from find ' do'"; fi
done
"$NM" find "$BIN" " do" "${TOK[@]}" --matrix all --limit 8 --by prob --format tsv >"$TMP/fp.tsv" 2>/dev/null
expect_eq "$(head -1 "$TMP/fp.tsv")" "$(printf 'matrix\tlayer\tneuron\tlogit\trank\ttop_token\tprob')" "find --by: prob appended"
# the same neurons and order as diff --token's exact values, sorted by prob_a (a model against itself is not needed:
# diff's rank_a/prob_a columns are base's, checked against the double reference in test_token_diff)
want=$(awk -F'\t' 'NR > 1 { printf "%s\t%s\t%s\t%s\n", $9, $1, $2, $3 }' "$TMP/do.tsv" | sort -t$'\t' -k1,1gr | head -8 | cut -f2-4)
expect_eq "$(tail -n +2 "$TMP/fp.tsv" | cut -f1-3)" "$want" "find --by prob lists the neurons with the highest probability of the token"
"$NM" find "$BIN" " do" "${TOK[@]}" --matrix all --limit 8 --by rank --format tsv >"$TMP/fr.tsv" 2>/dev/null
expect_eq "$(tail -n +2 "$TMP/fr.tsv" | awk -F'\t' 'NR > 1 && $5 < prev { bad++ } { prev = $5 } END { print bad + 0 }')" 0 "find --by rank: ranks rise"
expect_eq "$(tail -n +2 "$TMP/fr.tsv" | cut -f5 | head -1)" "$(awk -F'\t' 'NR > 1 { print $7 }' "$TMP/do.tsv" | sort -n | head -1)" "find --by rank: the best rank first"
expect_out '"by":"prob"' "$NM" find "$TMP/a.db" "▁do" --matrix all --by prob --format json --limit 3
expect_eq "$(grep -o '"prob":[0-9.e-]*' "$TMP/out" | wc -l)" 3 "find --by on an atlas: each neuron's stored prob"
"$NM" map "$BIN" "${TOK[@]}" -o "$TMP/up.db" --matrix up --top-k 5 2>/dev/null
expect_exit 2 'holds no down neurons \(it maps up\)' "$NM" find "$TMP/up.db" " do" --matrix down
expect_exit 2 'is 2 tokens|is [0-9]+ tokens' "$NM" find "$BIN" " dogs" "${TOK[@]}"

# ---- show --token: the token's place in one neuron ------------------------------
# against show's own full list (--top-k 512: every token, decoded by lens_decode) and diff's row
"$NM" show "$BIN" 4:32 "${TOK[@]}" --top-k 512 --bottom-k 0 --format tsv >"$TMP/s.tsv" 2>/dev/null
want_rank=$(awk -F'\t' '$5 == 400 { print $4 }' "$TMP/s.tsv")
for spelling in " do" "#400" "▁do"; do
    expect_out "^token 400 \" do\": logit [-0-9.]+, rank $want_rank of 512, prob " "$NM" show "$BIN" 4:32 "${TOK[@]}" --token "$spelling"
done
expect_eq "$(awk -F'\t' '$1 == "up" && $2 == 4 && $3 == 32 { print $7 }' "$TMP/do.tsv")" "$want_rank" "show --token and diff --token agree on the rank"
expect_out '"token":\{"token_id":400,"token":" do","stored":false\}' "$NM" show "$TMP/a.db" 3:21 --token "▁do" --format json
expect_out '^token 400 " do": logit 8.21488, rank 3 of 512' "$NM" show "$TMP/a.db" 3:80 --matrix gate --token "#400"

# ---- clamping defaults to the act site; notes, warnings, conflicts --------------
PROBE=(probe "$BIN" "${TOK[@]}" -p "Lily" --target " was")
"$NM" "${PROBE[@]}" --clamp 0:140=10 --format json >"$TMP/def.json" 2>"$TMP/def.err"
"$NM" "${PROBE[@]}" --clamp 0:140=10 --clamp-site act --format json >"$TMP/act.json" 2>/dev/null
if grep -Eq '"site":[[:space:]]*"act"' "$TMP/def.json" && cmp -s "$TMP/def.json" "$TMP/act.json"; then ok; else fail "--clamp without --clamp-site is act: $(head -c 300 "$TMP/def.json")"; fi
expect_eq "$(cat "$TMP/def.err")" "" "the default site says nothing"
expect_exit 0 'note: --clamp-site up fixes up.x before the gate scales it; on stories260K it does not steer' "$NM" "${PROBE[@]}" --clamp 0:140=10 --clamp-site up
expect_exit 0 'warning: --clamp-site without --clamp, --scale or --sweep: nothing is clamped' "$NM" generate "$BIN" "${TOK[@]}" -n 2 --clamp-site act
expect_exit 2 'neuron 0:140 is clamped twice \(clamp 10, clamp 3\)' "$NM" "${PROBE[@]}" --clamp 0:140=10 --clamp 0:140=3
expect_exit 2 'neuron 2:7 is clamped and scaled twice|neuron 2:7 is clamped and scaled' "$NM" generate "$BIN" "${TOK[@]}" -n 2 --clamp 2:7=1 --scale 2:7=0
expect_exit 2 'neuron 1:5 is clamped twice' "$NM" generate "$BIN" "${TOK[@]}" -n 2 --clamp 1:4,5=1 --clamp 1:5=2
expect_exit 2 "a.db is a neuromap atlas; give the model" "$NM" generate "$TMP/a.db" -n 2
expect_exit 2 "a.db is a neuromap atlas; give the model" "$NM" probe "$TMP/a.db" -p x --target y
expect_exit 2 "a.db is a neuromap atlas; give the model" "$NM" info "$TMP/a.db"

# ---- the README's example is this output, to the printed digit -----------------
readme=$(dirname "$0")/../README.md
for args in '--token " do" --limit 6' '--token " do" --matrix all --by prob --limit 6'; do
    want=$(awk -v cmd="\$ neuromap diff stories260K.bin stories260K-dogs.bin --tokenizer tok512.bin $args" \
        '$0 == cmd { b = 1; next } b && /^```/ { exit } b && !/^(A|B): / && $0 != "..." { print }' "$readme")
    got=$(eval "\"$NM\" diff \"$BIN\" \"$DOGS\" \"\${TOK[@]}\" $args" 2>/dev/null | grep -Ev '^(A|B): ')
    [ "${want:0:6}" == "matrix" ] && got=$(sed -n '/^matrix/,$p' <<<"$got")
    if [ -n "$want" ] && [ "$want" == "$got" ]; then ok; else fail "README block for diff $args differs: $(diff <(echo "$want") <(echo "$got") | head -5)"; fi
done

# ---- probe's sweep chart: %.3g and the top next token, as the README shows it ----
want=$(awk '/^P\(" named"\) with neuron 0:140 clamped at site act/ { b = 1 } b && /^```/ { exit } b' "$readme")
got=$("$NM" probe "$BIN" "${TOK[@]}" -p "One day, Tom went to the" --target " named" --clamp-site act --sweep 0:140=0,2,5,10,15,20 --top-k 3 2>/dev/null |
    sed -n '/^P(" named") with neuron 0:140/,$p')
if [ -n "$want" ] && [ "$want" == "$got" ]; then ok; else fail "README sweep chart differs: $(diff <(echo "$want") <(echo "$got") | head -5)"; fi
expect_eq "$(grep -c '^ *15 *0.421  " named" ' <<<"$got")" 1 "the sweep names the top next token (\" named\" at 15)"

# ---- generate --sweep: each value's continuation is that clamp's, same seed ------
GEN=(generate "$BIN" "${TOK[@]}" -p "One day, Tom went to the" -n 12 --seed 5)
"$NM" "${GEN[@]}" --sweep 4:149=0,6 --format json >"$TMP/sw.json" 2>/dev/null
for v in 0 6; do
    "$NM" "${GEN[@]}" --clamp 4:149=$v --format json >"$TMP/c.json" 2>/dev/null
    expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=float(sys.argv[3]); s=[x for x in d["sweep"] if x["value"]==v][0]; c=json.load(open(sys.argv[2]))["clamped"]; print(list(s)==["value","ids","text"], s["ids"]==c["ids"], s["text"]==c["text"])' "$TMP/sw.json" "$TMP/c.json" $v)" \
        "True True True" "--sweep value $v is --clamp 4:149=$v with the same seed"
done
expect_out '^ +6  One day, Tom went to the park\. Hi named' "$NM" generate "$BIN" "${TOK[@]}" -p "One day, Tom went to the" --temp 0 -n 16 --sweep 4:149=0,3,6
expect_eq "$(grep -c '^ *[036]  One day' "$TMP/out")" 3 "--sweep table: one line per value"
expect_exit 2 'two different reports' "$NM" "${GEN[@]}" --sweep 4:149=1 --compare

# ---- display: a quote token is "\"", and find --agreement's columns line up ------
quote_id=$(awk -F'\t' '$6 == "\"" { print $5; exit }' "$TMP/s.tsv")
expect_out "^ +[0-9]+ +$quote_id +[-0-9.]+ +[-0-9.e]+  \"\\\\\"\"\$" "$NM" show "$BIN" 4:32 "${TOK[@]}" --top-k 512 --bottom-k 0
"$NM" find "$BIN" " do" "${TOK[@]}" --matrix all --limit 40 --agreement >"$TMP/ag.txt" 2>/dev/null
# the partner side column (up/gate/down) starts at the same display column on every row
expect_eq "$(tail -n +2 "$TMP/ag.txt" | python3 -c 'import sys; print(len({l.index("  down ") if "  down " in l else l.index("  up ") for l in sys.stdin}))')" 1 \
    "find --agreement: the partner column is aligned (display width)"

# ---- a tokenizer.json where a llama2.c tokenizer .bin is expected ----------------
expect_exit 2 'tokenizer.json is a JSON file \(a Hugging Face tokenizer.json\?\); a llama2.c checkpoint needs a llama2.c tokenizer .bin' \
    "$NM" info "$BIN" --tokenizer "$SHARED/tokenizers/llama-3/tokenizer.json"
expect_exit 0 'warning: --tokenizer is for llama2.c checkpoints; .*stories260K-q8_0.gguf \(gguf\) carries its own tokenizer' \
    "$NM" info "$M/quant/stories260K-q8_0.gguf" "${TOK[@]}"

# ---- find --agreement on an atlas that holds both matrices: the model's answer ---
"$NM" find "$TMP/a.db" " do" --matrix all --agreement --limit 6 --format tsv >"$TMP/fa1.tsv" 2>/dev/null
"$NM" find "$BIN" " do" "${TOK[@]}" --matrix all --agreement --limit 6 --format tsv >"$TMP/fa2.tsv" 2>/dev/null
if [ -s "$TMP/fa1.tsv" ] && cmp -s "$TMP/fa1.tsv" "$TMP/fa2.tsv"; then ok; else fail "find --agreement: atlas and model differ: $(diff "$TMP/fa1.tsv" "$TMP/fa2.tsv" | head -4)"; fi
expect_exit 2 'holds the down neurons too .*maps up' "$NM" find "$TMP/up.db" " do" --agreement
finish
