# tests/cli_serve.sh — `neuromap serve`, the web atlas (issue 16).
#
# The API's documents against the CLI's own JSON (both parsed: the same
# values), generation streamed as events and ending with generate's
# document, errors (400/404/405/409/413/429) and malformed requests that
# never take the server down, a bounded load test, clean shutdown, and the
# pages in a real browser (Debian's chromium with playwright-core; SKIPPED
# when either is missing). Every server is started here on 127.0.0.1 with
# --port 0 and stopped here; nothing is left running.
source "$(dirname "$0")/lib.sh"
SKIPPED=0
B=$M/stories260K
L2C=("$B/stories260K.bin" --tokenizer "$B/tok512.bin")
CLIENT="python3 tests/web/client.py"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT

# serve NAME ARGS...: starts a server, waits (10 s at most) for its line,
# sets URL_NAME and PID_NAME.
serve() {
    local name=$1; shift
    "$NM" serve "$@" --port 0 2>"$TMP/$name.err" &
    local pid=$! port=""
    PIDS+=("$pid")
    for _ in $(seq 100); do
        port=$(sed -n 's|^neuromap: serving .* at http://127.0.0.1:\([0-9]*\)/$|\1|p' "$TMP/$name.err")
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then fail "serve $name did not start: $(head -c 300 "$TMP/$name.err")"; return 1; fi
    printf -v "URL_$name" 'http://127.0.0.1:%s/' "$port"
    printf -v "PID_$name" '%s' "$pid"
}

# stop NAME SIGNAL: the server exits 0 within 10 s.
stop() {
    local pid_var="PID_$1" i
    local pid=${!pid_var}
    kill "-$2" "$pid"
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then fail "serve $1 still running 10 s after SIG$2"; kill -9 "$pid"; fi
    wait "$pid"
    expect_eq "$?" 0 "serve $1's exit status after SIG$2"
    # The server's own stderr: a sanitizer report there fails the test (ASan build).
    if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$TMP/$1.err"; then fail "serve $1: $(grep -m3 -E 'Sanitizer|runtime error' "$TMP/$1.err")"; else ok; fi
}

# status URL WANT [METHOD BODY]: the HTTP status and a JSON {"error"} body.
status() {
    local url=$1 want=$2
    if [ $# -gt 2 ]; then $CLIENT post "$url" "$4" >"$TMP/resp" 2>&1; else $CLIENT get "$url" >"$TMP/resp" 2>&1; fi
    local got; got=$(head -1 "$TMP/resp")
    if [ "$got" != "$want" ]; then fail "$url: status $got, want $want: $(tail -c 200 "$TMP/resp")"; return; fi
    if [ "$want" != 200 ] && ! tail -n +2 "$TMP/resp" | python3 -c 'import json,sys; assert "error" in json.load(sys.stdin)' 2>/dev/null; then
        fail "$url: $want without a JSON error: $(tail -c 200 "$TMP/resp")"; return
    fi
    ok
}

# ---- the command line ------------------------------------------------------
"$NM" map "${L2C[@]}" --matrix all -o "$TMP/s.db" 2>/dev/null || fail "map stories260K"
"$NM" map "$M/stories260K-dogs/stories260K-dogs.bin" --tokenizer "$B/tok512.bin" --matrix all -o "$TMP/dogs.db" 2>/dev/null || fail "map dogs"
# activation evidence in the same atlas (a few stories: the neuron page shows it)
head -n 12 "$SHARED/corpora/stories260K-samples.txt" >"$TMP/corpus.txt"
"$NM" activations "${L2C[@]}" --corpus "$TMP/corpus.txt" -o "$TMP/s.db" --top-n 5 --bottom-n 5 2>/dev/null || fail "activations into the atlas"
expect_out '^usage: neuromap serve' "$NM" serve --help
expect_exit 2 'serve: expected one ATLAS' "$NM" serve
expect_exit 2 'not an atlas' "$NM" serve "$B/stories260K.bin"
expect_exit 2 'IPv4 address' "$NM" serve "$TMP/s.db" --host nowhere
expect_exit 2 "serve: --port must be a whole number in 0\\.\\.65535, not '70000'" "$NM" serve "$TMP/s.db" --port 70000
expect_exit 2 'tokenizer goes with --model' "$NM" serve "$TMP/s.db" --tokenizer "$B/tok512.bin"
"$NM" synth "$TMP/other" >/dev/null 2>&1
expect_exit 2 'not its model' "$NM" serve "$TMP/s.db" --model "$TMP/other"

# ---- the API equals the CLI's documents ------------------------------------
export NEUROMAP_SERVE_TOKEN_DELAY_MS=20 # lets the tests watch a stream in progress (serve.h)
serve main "$TMP/s.db" --model "${L2C[@]}" --diff "$TMP/dogs.db" --threads 1 || { finish; exit 1; }
unset NEUROMAP_SERVE_TOKEN_DELAY_MS
for spec in "up 0:0" "up 0:140" "gate 3:17" "down 4:171" "down 2:5"; do
    set -- $spec
    "$NM" show "$TMP/s.db" "$2" --matrix "$1" --format json >"$TMP/show.json"
    if $CLIENT same "${URL_main}api/neuron/$1/${2/://}" "$TMP/show.json" 2>"$TMP/err"; then ok; else fail "neuron $spec: $(cat "$TMP/err")"; fi
done
for spec in "all 5| named" "up 20| upon" "down 3|ver" "gate 10000|Q"; do
    args=${spec%%|*} text=${spec#*|}
    set -- $args
    "$NM" find "$TMP/s.db" "$text" --matrix "$1" --limit "$2" --format json >"$TMP/find.json" 2>/dev/null
    q=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.urlencode({"text": sys.argv[1], "matrix": sys.argv[2], "limit": sys.argv[3]}))' "$text" "$1" "$2")
    if $CLIENT same "${URL_main}api/find?$q" "$TMP/find.json" 2>"$TMP/err"; then ok; else fail "find '$text' $args: $(cat "$TMP/err")"; fi
done
# ?atlas=diff: the --diff atlas's documents
"$NM" show "$TMP/dogs.db" 3:17 --matrix gate --format json >"$TMP/show.json"
if $CLIENT same "${URL_main}api/neuron/gate/3/17?atlas=diff" "$TMP/show.json" 2>"$TMP/err"; then ok; else fail "diff neuron: $(cat "$TMP/err")"; fi
status "${URL_main}api/neuron/gate/3/17?atlas=other" 404
# find's defaults: --matrix up --limit 20
"$NM" find "$TMP/s.db" " named" --format json >"$TMP/find.json" 2>/dev/null
if $CLIENT same "${URL_main}api/find?text=%20named" "$TMP/find.json" 2>"$TMP/err"; then ok; else fail "find defaults: $(cat "$TMP/err")"; fi

# show --examples: the activations the atlas holds (defaults, and every option).
for spec in "0:140|" "4:1|?around=3&row=up&through=embed"; do
    n=${spec%%|*} q=${spec#*|} args=()
    [ -n "$q" ] && args=(--around 3 --row up --through embed)
    "$NM" show "$TMP/s.db" "$n" --examples --format json "${args[@]}" >"$TMP/ex.json"
    if $CLIENT same "${URL_main}api/examples/${n/://}$q" "$TMP/ex.json" 2>"$TMP/err"; then ok; else fail "examples $n: $(cat "$TMP/err")"; fi
done
# Each example's context is its left text, the token in [[ ]], its right
# text; the top example is the largest activation the statistics saw.
python3 - "$TMP/ex.json" >"$TMP/err" 2>&1 <<'EOF' && ok || fail "examples left/token/right: $(cat "$TMP/err")"
import json, sys
d = json.load(open(sys.argv[1]))
a = d["activations"]
xs = a["top"] + a["bottom"] + [x for q in a["quantiles"] for x in q["examples"]]
assert len(xs) >= 10, len(xs)
for x in xs:
    assert x["context"] == x["left"] + "[[" + x["token"] + "]]" + x["right"], x
assert a["top"][0]["act"] == a["max"] and a["bottom"][0]["act"] == a["min"], (a["top"][0], a["max"])
EOF
status "${URL_main}api/examples/0/172" 404
status "${URL_main}api/examples/0" 400
status "${URL_main}api/examples/0/1?around=x" 400
status "${URL_main}api/examples/0/1?row=down" 400

# /api/info and /api/layer against independent readings of the atlas.
$CLIENT get "${URL_main}api/info" | tail -n +2 >"$TMP/info.json"
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["atlas"]["n_layers"], d["atlas"]["ffn_dim"], d["atlas"]["matrices"], d["model"]["vocab_size"], d["diff"]["path"] == sys.argv[2], d["generate"], d["activations"])' "$TMP/info.json" "$TMP/dogs.db")" \
    "5 172 up,gate,down 512 True True True" "/api/info"
$CLIENT get "${URL_main}api/layer/down/2?tokens=5" | tail -n +2 >"$TMP/layer.json"
python3 - "$TMP/layer.json" "$TMP/s.db" "$TMP/dogs.db" >"$TMP/err" 2>&1 <<'EOF' && ok || fail "/api/layer/down/2: $(cat "$TMP/err")"
import collections, json, sqlite3, sys
d = json.load(open(sys.argv[1]))
def tops(path):
    db = sqlite3.connect(path)
    return dict(db.execute("SELECT neuron, token_id FROM entries WHERE matrix='down' AND layer=2 AND rank=1").fetchall()), \
           dict(db.execute("SELECT neuron, prob FROM entries WHERE matrix='down' AND layer=2 AND rank=1").fetchall())
a, pa = tops(sys.argv[2]); b, _ = tops(sys.argv[3])
c = collections.Counter(a.values())
want = sorted(c.items(), key=lambda x: (-x[1], x[0]))[:5]
assert [(t["token_id"], t["count"]) for t in d["top_tokens"]] == want, (d["top_tokens"], want)
hist = [0] * 20
for p in pa.values(): hist[min(19, int(p * 20))] += 1
assert d["histogram"]["counts"] == hist, (d["histogram"], hist)
agree = sum(a[n] == b[n] for n in a)
assert d["diff"]["agree"] == agree and d["diff"]["compared"] == len(a), (d["diff"]["agree"], agree)
assert all(a[x["neuron"]] != b[x["neuron"]] for x in d["diff"]["changed"])
EOF

# The model's endpoints against independent arithmetic (numpy-free: python floats).
$CLIENT get "${URL_main}api/write/1/3" | tail -n +2 >"$TMP/write.json"
"$NM" show "${L2C[@]}" 1:3 --matrix down --format json >"$TMP/down.json" 2>/dev/null
python3 - "$TMP/write.json" "$TMP/down.json" >"$TMP/err" 2>&1 <<'EOF' && ok || fail "/api/write: $(cat "$TMP/err")"
import json, sys
w, d = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert [t["token_id"] for t in w["positive"]["top"]] == [t["token_id"] for t in d["top"]]
# The negation's top tokens are the column's bottom ones, lowest first.
assert [t["token_id"] for t in w["negative"]["top"][:5]] == [t["token_id"] for t in d["bottom"]], (w["negative"]["top"][:5], d["bottom"])
EOF
# All 512 logits of a neuron: the histogram's ends are show's top and bottom logits (model).
$CLIENT get "${URL_main}api/logits/gate/2/9" | tail -n +2 >"$TMP/logits.json"
"$NM" show "${L2C[@]}" 2:9 --matrix gate --format json >"$TMP/gate.json" 2>/dev/null
python3 - "$TMP/logits.json" "$TMP/gate.json" >"$TMP/err" 2>&1 <<'EOF' && ok || fail "/api/logits: $(cat "$TMP/err")"
import json, sys
h, d = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert sum(h["counts"]) == 512 and h["bins"] == len(h["counts"]), h
assert h["max"] == d["top"][0]["logit"] and h["min"] == d["bottom"][0]["logit"], (h["min"], h["max"], d["top"][0], d["bottom"][0])
assert h["counts"][-1] >= 1 and h["counts"][0] >= 1
EOF
# Related neurons and the predicted effect, recomputed in plain Python from the
# same model's F32 safetensors (stories260K-hf: the same weights; tied head).
$CLIENT get "${URL_main}api/related/1/3?limit=4" | tail -n +2 >"$TMP/related.json"
$CLIENT get "${URL_main}api/effect/1/3?value=4&prompt=Once%20upon&limit=5" | tail -n +2 >"$TMP/effect.json"
python3 - "$M/stories260K-hf/model.safetensors" "$TMP/related.json" "$TMP/effect.json" >"$TMP/err" 2>&1 <<'EOF' && ok || fail "/api/related, /api/effect: $(cat "$TMP/err")"
import array, json, math, struct, sys
f = open(sys.argv[1], "rb")
n = struct.unpack("<Q", f.read(8))[0]
head, base = json.loads(f.read(n)), 8 + n
def tensor(name):
    t = head[name]; a, b = t["data_offsets"]; f.seek(base + a)
    x = array.array("f"); x.frombytes(f.read(b - a)); return x, t["shape"]
L, N, DIM, FFN = 1, 3, 64, 172
down = [tensor(f"model.layers.{l}.mlp.down_proj.weight")[0] for l in range(5)]
up = [tensor(f"model.layers.{l}.mlp.up_proj.weight")[0] for l in range(5)]
col = lambda l, j: [down[l][i * FFN + j] for i in range(DIM)]
dot = lambda a, b: sum(x * y for x, y in zip(a, b))
d = col(L, N)
readers = sorted(((dot(up[l][j * DIM:(j + 1) * DIM], d), l, j) for l in range(L + 1, 5) for j in range(FFN)), key=lambda x: -abs(x[0]))[:4]
cos = lambda a, b: dot(a, b) / math.sqrt(dot(a, a) * dot(b, b))
similar = sorted(((cos(col(l, j), d), l, j) for l in range(5) for j in range(FFN) if (l, j) != (L, N)), key=lambda x: -x[0])[:4]
r = json.load(open(sys.argv[2]))
assert [(x["layer"], x["neuron"]) for x in r["readers"]] == [(l, j) for _, l, j in readers], (r["readers"], readers)
assert all(abs(x["score"] - s) < 1e-4 * max(1, abs(s)) for x, (s, _, _) in zip(r["readers"], readers))
assert [(x["layer"], x["neuron"]) for x in r["similar"]] == [(l, j) for _, l, j in similar], (r["similar"], similar)
emb, g = tensor("model.embed_tokens.weight")[0], tensor("model.norm.weight")[0]
gd = [g[i] * d[i] for i in range(DIM)]
pred = sorted(((4 * dot(emb[t * DIM:(t + 1) * DIM], gd), t) for t in range(512)), key=lambda x: (-x[0], x[1]))
e = json.load(open(sys.argv[3]))
assert [x["token_id"] for x in e["increase"]] == [t for _, t in pred[:5]], (e["increase"], pred[:5])
assert [x["token_id"] for x in e["decrease"]] == [t for _, t in pred[::-1][:5]], (e["decrease"], pred[-5:])
assert all(abs(x["predicted_dlogit"] - p) < 1e-4 * max(1, abs(p)) for x, (p, _) in zip(e["increase"], pred))
assert all(0 <= x["prob_baseline"] <= 1 and 0 <= x["prob_clamped"] <= 1 for x in e["increase"] + e["decrease"])
EOF

# ---- generation: the stream ends with generate --compare --format json -----
gen() { # BODY, then generate's options
    local body=$1; shift
    "$NM" generate "${L2C[@]}" --threads 1 --compare --format json "$@" >"$TMP/gen.json" 2>/dev/null || { fail "generate $*"; return; }
    if $CLIENT stream "${URL_main}api/generate" "$body" "$TMP/gen.json" 2>"$TMP/err"; then ok; else fail "stream $body: $(cat "$TMP/err")"; fi
}
gen '{"prompt":"Once upon a time","n":12,"clamp":[{"layer":1,"neuron":3,"value":10}],"site":"act","seed":7,"temperature":0.8}' \
    -p "Once upon a time" -n 12 --clamp 1:3=10 --clamp-site act --seed 7 --temp 0.8
gen '{"n":6}' -n 6
gen '{"prompt":"Lily","n":8,"scale":[{"layer":0,"neuron":5,"value":-3}],"clamp":[{"layer":4,"neuron":100,"value":2}],"temperature":0}' \
    -p Lily -n 8 --scale 0:5=-3 --clamp 4:100=2 --temp 0
gen '{"prompt":"The dog","n":5,"clamp":[{"layer":2,"neuron":9,"value":-8}],"positions":"generated","top_p":0.5,"seed":3}' \
    -p "The dog" -n 5 --clamp 2:9=-8 --clamp-positions generated --top-p 0.5 --seed 3
# probe: the same document as probe --format json
probe() { # BODY, then probe's options
    local body=$1; shift
    "$NM" probe "${L2C[@]}" --threads 1 --format json "$@" >"$TMP/probe.json" 2>/dev/null || { fail "probe $*"; return; }
    if $CLIENT postsame "${URL_main}api/probe" "$body" "$TMP/probe.json" 2>"$TMP/err"; then ok; else fail "probe $body: $(cat "$TMP/err")"; fi
}
probe '{"prompt":"Once upon a time, there was a little girl named","target":" Lily"}' -p "Once upon a time, there was a little girl named" --target " Lily"
probe '{"prompt":"The dog","target":" ran to the park","clamp":[{"layer":1,"neuron":3,"value":5}],"site":"act","top_k":4}' \
    -p "The dog" --target " ran to the park" --clamp 1:3=5 --clamp-site act --top-k 4
probe '{"prompt":"Lily","target":" was","sweep":{"layer":0,"neuron":140,"values":[-5,0,2.5,10]},"scale":[{"layer":2,"neuron":7,"value":3}]}' \
    -p Lily --target " was" --sweep 0:140=-5,0,2.5,10 --scale 2:7=3
status "${URL_main}api/probe" 400 POST '{"prompt":"Lily"}'
status "${URL_main}api/probe" 400 POST '{"prompt":"Lily","target":" was","sweep":{"layer":0,"neuron":999,"values":[1]}}'
status "${URL_main}api/probe" 405
if $CLIENT busy "${URL_main}api/generate" '{"n":200}' 2>"$TMP/err"; then ok; else fail "429 while generating: $(cat "$TMP/err")"; fi

# ---- errors ----------------------------------------------------------------
status "${URL_main}nope" 404
status "${URL_main}api/nope" 404
status "${URL_main}index.html" 404
status "${URL_main}api/neuron/up/9/0" 404
status "${URL_main}api/neuron/up/0/172" 404
status "${URL_main}api/neuron/sideways/0/0" 400
status "${URL_main}api/neuron/up/x/0" 400
status "${URL_main}api/find" 400
status "${URL_main}api/find?text=zzqqxx" 404
status "${URL_main}api/find?text=a&matrix=left" 400
status "${URL_main}api/find?text=a&limit=0" 400
status "${URL_main}api/layer/up/99" 404
status "${URL_main}api/effect/1/3?value=nan" 400
status "${URL_main}api/generate" 400 POST 'not json'
status "${URL_main}api/generate" 400 POST '{"n":0}'
status "${URL_main}api/generate" 400 POST '{"clamp":[{"layer":9,"neuron":0,"value":1}]}'
status "${URL_main}api/generate" 400 POST '{"site":"sideways"}'
status "${URL_main}api/info" 405 POST '{}'
for how in "" chunked; do
    if $CLIENT big "${URL_main}api/generate" $((1 << 20 | 1)) $how 2>"$TMP/err"; then ok; else fail "413 $how: $(cat "$TMP/err")"; fi
done
python3 -c 'print("{\"n\": 1, \"prompt\": 7" + " " * 1000000 + "}")' >"$TMP/near.json" # just under 1 MiB: read whole, refused for its content
status "${URL_main}api/generate" 400 POST "@$TMP/near.json"
port=${URL_main##*:}; port=${port%/}
if $CLIENT raw 127.0.0.1 "$port" 2>"$TMP/err"; then ok; else fail "malformed requests: $(cat "$TMP/err")"; fi

# ---- load: 400 requests to the neuron API, 25 at a time, all 200 -------------
if $CLIENT load "${URL_main}api/neuron/up/2/50" 400 25 >"$TMP/load" 2>"$TMP/err"; then ok; cat "$TMP/load"; else fail "load: $(cat "$TMP/err")"; fi
if $CLIENT load "${URL_main}api/neuron/down/1/1" 80 40 >"$TMP/load" 2>"$TMP/err"; then ok; else fail "40 connections from one address: $(cat "$TMP/err")"; fi
status "${URL_main}api/info" 200

# ---- a quantised model: the API takes generate's and probe's default path (the
# fast matmuls, whose probabilities differ from --exact-activations' in the last
# digits) and "exact_activations": true takes the exact one -------------------
Q8=$M/quant/stories260K-q8_0.gguf
"$NM" map "$Q8" --matrix up -o "$TMP/q8.db" 2>/dev/null || fail "map the Q8_0 model"
serve q8 "$TMP/q8.db" --model "$Q8" --threads 1 || { finish; exit 1; }
body='{"prompt":"Once upon a time","target":" there","clamp":[{"layer":1,"neuron":3,"value":5}]'
for exact in false true; do
    opt=(); [ $exact = true ] && opt=(--exact-activations)
    "$NM" probe "$Q8" --threads 1 --format json -p "Once upon a time" --target " there" --clamp 1:3=5 "${opt[@]}" >"$TMP/probe.json" 2>/dev/null
    if $CLIENT postsame "${URL_q8}api/probe" "$body,\"exact_activations\":$exact}" "$TMP/probe.json" 2>"$TMP/err"; then ok; else fail "q8 probe exact=$exact: $(cat "$TMP/err")"; fi
    "$NM" generate "$Q8" --threads 1 --compare --format json -p "Once upon a time" -n 6 --clamp 1:3=5 --seed 2 "${opt[@]}" >"$TMP/gen.json" 2>/dev/null
    if $CLIENT stream "${URL_q8}api/generate" '{"prompt":"Once upon a time","n":6,"clamp":[{"layer":1,"neuron":3,"value":5}],"seed":2,"exact_activations":'$exact'}' "$TMP/gen.json" 2>"$TMP/err"; then ok; else fail "q8 generate exact=$exact: $(cat "$TMP/err")"; fi
done
status "${URL_q8}api/probe" 400 POST "$body,\"exact_activations\":1}"
stop q8 TERM

# ---- without --model: 409; an atlas whose vocabulary is HTML -------------------
"$NM" synth "$TMP/syn0" >/dev/null 2>&1
mkdir -p "$TMP/htok"
python3 - "$TMP/syn0" "$TMP/htok" <<'EOF'
import json, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
t = json.load(open(src + "/tokenizer.json"))
v = t["model"]["vocab"]
nxt = max(max(v.values()), max(a["id"] for a in t["added_tokens"])) + 1
# Byte-level BPE spells bytes as GPT-2's printable characters: ASCII
# punctuation and letters are themselves, a space is 'Ġ'.
# "Ġæ" is the bytes 20 E6: E6 starts a three-byte character, so the piece
# is not UTF-8 on its own (like many pieces of a real byte-level vocabulary).
for p in ["<script>alert(1)</script>", "\"quote'&amp;", "Ġ<b>bold</b>", "Ġæ"]:
    v[p] = nxt
    nxt += 1
json.dump(t, open(dst + "/tokenizer.json", "w"))
shutil.copy(src + "/tokenizer_config.json", dst)
EOF
"$NM" synth "$TMP/hsyn" --tokenizer "$TMP/htok" --plant '0:0=<script>alert(1)</script>' --plant "0:1=\"quote'&amp;" \
    --plant '0:2= <b>bold</b>' --plant '0:3=Ġæ' --plant-boost 4 >/dev/null 2>&1 || fail "synth with HTML pieces"
"$NM" map "$TMP/hsyn" --matrix all -o "$TMP/h.db" 2>/dev/null || fail "map the HTML vocabulary"
export NEUROMAP_SERVE_IDLE_TIMEOUT_S=2 # a slow client is cut off (30 s in use)
serve html "$TMP/h.db" || { finish; exit 1; }
unset NEUROMAP_SERVE_IDLE_TIMEOUT_S
port=${URL_html##*:}; port=${port%/}
if $CLIENT slow 127.0.0.1 "$port" 6 2>"$TMP/err"; then ok; else fail "slow client: $(cat "$TMP/err")"; fi
status "${URL_html}api/generate" 409 POST '{}'
status "${URL_html}api/probe" 409 POST '{"prompt":"a","target":"b"}'
status "${URL_html}api/write/0/0" 409
status "${URL_html}api/layer/up/0" 200
"$NM" show "$TMP/h.db" 0:0 --format json >"$TMP/show.json"
if $CLIENT same "${URL_html}api/neuron/up/0/0" "$TMP/show.json" 2>"$TMP/err"; then ok; else fail "html neuron: $(cat "$TMP/err")"; fi
expect_eq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["top"][0]["token"])' "$TMP/show.json")" '<script>alert(1)</script>' "planted HTML piece"
# A piece that is not UTF-8: show's text escapes it; "token_bytes" holds its bytes.
"$NM" show "$TMP/h.db" 0:3 --format json >"$TMP/show.json"
if $CLIENT same "${URL_html}api/neuron/up/0/3" "$TMP/show.json" 2>"$TMP/err"; then ok; else fail "invalid UTF-8 neuron: $(cat "$TMP/err")"; fi
expect_eq "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d["top"][0]; print(t["token"], t["token_bytes"], "token_bytes" in d["top"][1])' "$TMP/show.json")" ' \xE6 20e6 False' "token_bytes of a piece that is not UTF-8"
status "${URL_html}api/examples/0/0" 404
# The page itself is static: the token never reaches the HTML the server sends.
$CLIENT get "${URL_html}neuron/up/0/0" >"$TMP/page"
if grep -q 'alert' "$TMP/page"; then fail "token text in the served HTML"; else ok; fi

# ---- the pages in a browser ------------------------------------------------
if [ -x /usr/bin/chromium ] && [ -d tests/web/node_modules/playwright-core ] && command -v node >/dev/null; then
    timeout 300 node tests/web/pages.mjs "$URL_main" "$URL_html" >"$TMP/browser" 2>&1
    while read -r line; do
        case $line in
        ok\ *) ok ;;
        FAIL\ *) fail "browser: ${line#FAIL }" ;;
        esac
    done <"$TMP/browser"
    grep -Eq '^(ok|FAIL) ' "$TMP/browser" || fail "browser tests did not run: $(tail -c 400 "$TMP/browser")"
else
    SKIPPED=$((SKIPPED + 1))
    echo "cli_serve: browser tests SKIPPED (needs /usr/bin/chromium and tests/web/node_modules: scripts/install-deps)" >&2
fi

# ---- another address: a warning (192.0.2.1 is no address of this machine, so
# nothing listens anywhere but on 127.0.0.1 during the tests) ----------------------
expect_exit 1 'cannot listen on 192.0.2.1' "$NM" serve "$TMP/h.db" --host 192.0.2.1 --port 0
grep -q 'warning: listening on 192.0.2.1: .*no authentication' "$TMP/err" && ok || fail "--host without a warning: $(cat "$TMP/err")"

# ---- clean shutdown ----------------------------------------------------------
status "${URL_main}api/info" 200
stop main TERM
stop html INT
grep -q 'stopping' "$TMP/main.err" && ok || fail "no stopping line"
PIDS=()

echo "$(basename "$0" .sh): $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
