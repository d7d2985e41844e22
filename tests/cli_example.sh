# cli_example.sh — examples/hello.c, the library used from outside through
# include/neuromap.h alone, does what it says: its top tokens for up 0:57
# are those of the paper's formula computed here, in double precision, by
# Python straight from the llama2.c file's bytes (README, "llama2.c"); its
# clamped greedy story is text, and the same text `neuromap generate` prints;
# linked with the shared library instead of the static one, it prints the same.
source "$(dirname "$0")/lib.sh"

HELLO=$(dirname "$NM")/examples/hello
BIN=$M/stories260K/stories260K.bin
TOK=$M/stories260K/tok512.bin

if [ -x "$HELLO" ]; then ok; else fail "$HELLO is not built"; finish; exit; fi
"$HELLO" "$BIN" "$TOK" >"$TMP/out" 2>"$TMP/err"
expect_eq $? 0 "hello exits 0 ($(head -c 300 "$TMP/err"))"

# The reference: logits = E · (g ⊙ w / sqrt(mean(w²) + 1e-5)) for w = up row
# 57 of layer 0 (w3), g the final norm, E the tied embedding; the five
# largest, with the token texts read from tok512.bin.
python3 - "$BIN" "$TOK" >"$TMP/ref" <<'EOF'
import math, struct, sys
from array import array
data = open(sys.argv[1], "rb").read()
dim, ffn, L, heads, kv_heads, vocab, seq = struct.unpack("<7i", data[:28])
assert vocab > 0, "a separate classifier (negative vocab_size) is not read here"
f = array("f"); f.frombytes(data[28:])
kv = kv_heads * (dim // heads)
sizes = [("embd", vocab * dim), ("rms_att", L * dim), ("wq", L * dim * dim), ("wk", L * kv * dim),
         ("wv", L * kv * dim), ("wo", L * dim * dim), ("rms_ffn", L * dim), ("w1", L * ffn * dim),
         ("w2", L * dim * ffn), ("w3", L * ffn * dim), ("rms_final", dim)]
off, at = 0, {}
for name, n in sizes:
    at[name] = off
    off += n
w = [float(x) for x in f[at["w3"] + 57 * dim: at["w3"] + 58 * dim]]
g = f[at["rms_final"]: at["rms_final"] + dim]
rms = math.sqrt(sum(x * x for x in w) / dim + 1e-5)
x = [g[i] * w[i] / rms for i in range(dim)]
E = at["embd"]
logits = [sum(f[E + t * dim + i] * x[i] for i in range(dim)) for t in range(vocab)]
t = open(sys.argv[2], "rb").read()
pos, text = 4, []
for _ in range(vocab):
    score, n = struct.unpack("<fi", t[pos:pos + 8])
    text.append(t[pos + 8: pos + 8 + n].decode("utf-8", "replace"))
    pos += 8 + n
for r, tok in enumerate(sorted(range(vocab), key=lambda i: -logits[i])[:5]):
    print("up 0:57 top %d: %d '%s'" % (r + 1, tok, text[tok]))
EOF
expect_eq $? 0 "the Python reference ran"
expect_eq "$(sed -n 1p "$TMP/out")" "$(sed -n 1p "$TMP/ref")" "top token of up 0:57"
expect_eq "$(head -n 5 "$TMP/out")" "$(cat "$TMP/ref")" "top 5 tokens of up 0:57"

# The story: words, and the command line's greedy clamped generation.
story=$(sed -n 6p "$TMP/out")
if [ "$(wc -w <<<"$story")" -ge 10 ]; then ok; else fail "hello printed no story: '$story'"; fi
expect_eq "$(wc -l <"$TMP/out")" 6 "hello prints five tokens and one line of story"
"$NM" generate "$BIN" --tokenizer "$TOK" -n 48 --temp 0 --clamp 0:57=10 --clamp-site up >"$TMP/gen" 2>/dev/null
expect_eq "$story" "$(cat "$TMP/gen")" "hello's story is neuromap generate --temp 0 --clamp 0:57=10 --clamp-site up"

# The same program linked with libneuromap.so says the same.
"$HELLO-shared" "$BIN" "$TOK" >"$TMP/out-shared" 2>"$TMP/err"
expect_eq $? 0 "hello-shared exits 0 ($(head -c 300 "$TMP/err"))"
expect_eq "$(cat "$TMP/out-shared")" "$(cat "$TMP/out")" "hello-shared prints what hello prints"

finish
