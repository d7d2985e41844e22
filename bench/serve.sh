#!/usr/bin/env bash
# bench/serve.sh [ATLAS] — the web atlas's latency (docs/BENCHMARKS.md, "The web atlas").
# Without ATLAS it builds an 8B-shaped one (bench/atlas8b.py, ~400 MB, a few minutes).
# Prints: start-up time, one neuron page's requests in sequence (what a browser
# asks for on a fresh load), and the load test of tests/cli_serve.sh.
set -e
cd "$(dirname "$0")/.."
NM=${NM:-./neuromap}
SHARED=${NEUROMAP_SHARED:-../shared}
TMP=$(mktemp -d)
trap 'kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
ATLAS=$1
if [ -z "$ATLAS" ]; then
    "$NM" map "$SHARED/models/stories260K/stories260K.bin" --tokenizer "$SHARED/models/stories260K/tok512.bin" -o "$TMP/small.db" 2>/dev/null
    python3 bench/atlas8b.py "$TMP/small.db" "$TMP/8b.db"
    ATLAS=$TMP/8b.db
fi
t0=$(date +%s.%N)
"$NM" serve "$ATLAS" --port 0 2>"$TMP/err" &
PID=$!
for _ in $(seq 600); do grep -q serving "$TMP/err" && break; sleep 0.05; done
t1=$(date +%s.%N)
URL=$(sed -n 's|^neuromap: serving .* at \(http://[^ ]*\)$|\1|p' "$TMP/err")
echo "start-up (atlas opened, token table read): $(python3 -c "print(f'{($t1 - $t0) * 1000:.0f} ms')")"
python3 - "$URL" <<'PY'
import http.client, sys, time, urllib.parse, random, statistics
u = urllib.parse.urlsplit(sys.argv[1])
def get(path):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("GET", path); r = c.getresponse(); r.read(); c.close()
    assert r.status == 200, (path, r.status)
info = None
rng = random.Random(1)
page, neuron, layer = [], [], []
for i in range(50):
    l, n = rng.randrange(32), rng.randrange(14336)
    t0 = time.perf_counter()
    for p in ["/neuron/up/%d/%d" % (l, n), "/app.js", "/style.css", "/favicon.svg", "/api/info", "/api/neuron/up/%d/%d" % (l, n)]:
        get(p)
    page.append(time.perf_counter() - t0)
    t0 = time.perf_counter(); get("/api/neuron/up/%d/%d" % (l, n)); neuron.append(time.perf_counter() - t0)
for l in range(4):
    t0 = time.perf_counter(); get("/api/layer/up/%d" % l); layer.append(time.perf_counter() - t0)
ms = lambda xs, q: sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] * 1000
print(f"neuron page (6 requests in sequence, 50 random neurons): p50 {ms(page, .5):.2f} ms, max {max(page) * 1000:.2f} ms")
print(f"one /api/neuron request: p50 {ms(neuron, .5):.2f} ms, max {max(neuron) * 1000:.2f} ms")
print(f"one /api/layer summary (14,336 neurons): p50 {ms(layer, .5):.0f} ms")
PY
python3 tests/web/client.py load "${URL}api/neuron/up/7/1234" 400 25
