# tests/cli_isa.sh — kernel sets chosen at run time (issue 13 item 10):
# --version names the set; NEUROMAP_ISA forces one, and a name that is no
# set or a set the CPU lacks is exit 2 naming what it has; every set the CPU
# has gives the same map (token ids in the same order, the same logits; the
# probabilities within the exponentials' stated error), and map's summary
# names the set.
source "$(dirname "$0")/lib.sh"
BIN=$M/stories260K/stories260K.bin
TOK=(--tokenizer "$M/stories260K/tok512.bin")

expect_out '^kernels: (generic|avx2|avx512|avx512bf16|amx)' "$NM" --version
have=$(sed -n 's/.*this CPU has \([a-z0-9, ]*\);.*/\1/p' "$TMP/out")
expect_eq "${have%%,*}" generic "--version lists the sets this CPU has, generic first"

expect_exit 2 '^neuromap: NEUROMAP_ISA=avx3: not a kernel set \(generic, avx2, avx512, avx512bf16, amx\)$' \
    env NEUROMAP_ISA=avx3 "$NM" --version
# A CPU without AVX-512 (the test hook takes sets away, never adds them).
expect_exit 2 '^neuromap: NEUROMAP_ISA=avx512: this CPU has generic, avx2$' \
    env NEUROMAP_TEST_CPU_ISA=avx2 NEUROMAP_ISA=avx512 "$NM" map "$BIN" "${TOK[@]}" --format tsv
[ "$(wc -l <"$TMP/err")" -eq 1 ] && ok || fail "one line of stderr, got $(wc -l <"$TMP/err")"
expect_out '^kernels: generic \(this CPU has generic;' env NEUROMAP_TEST_CPU_ISA=generic "$NM" --version
expect_out '^kernels: avx2 \(this CPU has generic, avx2[;,]' env NEUROMAP_ISA=avx2 "$NM" --version

# The same map under every set this CPU has, exact and through the prefilter;
# the summary line names the set that ran.
# same_map A B: columns 1-7 (matrix layer neuron rank token_id token logit)
# byte for byte; prob within 1e-5 relative (printed to 7 digits).
same_map() {
    cut -f1-7 "$1" | cmp -s - <(cut -f1-7 "$2") &&
        paste <(cut -f8 "$1") <(cut -f8 "$2") | awk -F'\t' 'NR > 1 { d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1 + 1e-12) bad++ } END { exit bad > 0 }'
}
IFS=', ' read -r -a sets <<<"$have"
env NEUROMAP_ISA=generic "$NM" map "$BIN" "${TOK[@]}" --matrix all --format tsv --kernel native >"$TMP/generic.tsv" 2>/dev/null
for s in "${sets[@]}"; do
    ran=$s
    env NEUROMAP_ISA="$s" "$NM" map "$BIN" "${TOK[@]}" --matrix all --format tsv --kernel native >"$TMP/$s.tsv" 2>"$TMP/$s.err"
    same_map "$TMP/generic.tsv" "$TMP/$s.tsv" && ok || fail "kernel set $s: map differs from generic's"
    grep -q "(2 threads, native kernel, $ran)\|threads, native kernel, $ran)" "$TMP/$s.err" && ok ||
        fail "kernel set $s: summary does not name $ran: $(grep '^map: [0-9]' "$TMP/$s.err")"
    # the prefilter: ids and logits (columns 1-7) the exact map's
    env NEUROMAP_ISA="$s" "$NM" map "$BIN" "${TOK[@]}" --matrix all --format tsv --prefilter --prob-tol inf 2>/dev/null |
        cut -f1-7 >"$TMP/$s.pf"
    cut -f1-7 "$TMP/generic.tsv" | cmp -s - "$TMP/$s.pf" && ok || fail "kernel set $s: prefilter ids or logits differ"
done
echo "kernel sets tested: ${sets[*]}"
# AMX refused by the OS (played by the test hook): avx512bf16, with one note.
if [[ " ${sets[*]} " == *" amx "* ]]; then
    expect_out '^kernels: avx512bf16 \(this CPU has generic, avx2, avx512, avx512bf16;' env NEUROMAP_TEST_AMX_REFUSED=1 "$NM" --version
    grep -q '^note: amx: the OS refused tile data (arch_prctl: ' "$TMP/out" && ok || fail "no note on the refusal: $(cat "$TMP/out")"
    env NEUROMAP_TEST_AMX_REFUSED=1 "$NM" map "$BIN" "${TOK[@]}" --format tsv >/dev/null 2>"$TMP/refused.err"
    [ "$(grep -c '^map: note: amx: the OS refused tile data' "$TMP/refused.err")" = 1 ] && grep -q 'native kernel, avx512bf16)' "$TMP/refused.err" &&
        ok || fail "map with AMX refused: $(cat "$TMP/refused.err")"
else
    skip "no AMX on this CPU: the refusal's fallback is not tested"
fi
# auto: native where a vector set runs it, OpenBLAS in portable C; the
# summary says which and why (a line of lens.c's table), only when chosen.
env NEUROMAP_ISA=generic "$NM" map "$BIN" "${TOK[@]}" --format tsv >/dev/null 2>"$TMP/auto.err"
grep -q 'openblas kernel, generic)' "$TMP/auto.err" && ok || fail "generic auto: $(grep '^map: [0-9]' "$TMP/auto.err")"
grep -q "^map: kernel: openblas, chosen for kernel set generic: portable C: " "$TMP/auto.err" && ok || fail "generic auto: no reason given"
"$NM" map "$BIN" "${TOK[@]}" --format tsv >/dev/null 2>"$TMP/auto.err"
[ "${sets[-1]}" = generic ] || grep -q "^map: kernel: native, chosen for kernel set ${sets[-1]}: " "$TMP/auto.err" && ok || fail "auto on ${sets[-1]}: $(grep '^map: kernel' "$TMP/auto.err")"
"$NM" map "$BIN" "${TOK[@]}" --format tsv --kernel native >/dev/null 2>"$TMP/asked.err"
grep -q "^map: kernel:" "$TMP/asked.err" && fail "--kernel native: a reason printed for a kernel asked for" || ok
finish
