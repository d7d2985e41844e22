#!/usr/bin/env python3
"""bench/atlas8b.py SMALL.db OUT.db — an atlas with Llama 3.1 8B's shape
(32 layers x 14,336 up neurons, vocabulary 128,256, top 10 / bottom 5),
filled with random but well-formed lists, for timing `serve` (docs/BENCHMARKS.md,
"The web atlas"). Schema and meta are copied from SMALL.db (any atlas)."""
import math, random, sqlite3, sys

small, out = sys.argv[1], sys.argv[2]
L, F, V, TOP, BOTTOM = 32, 14336, 128256, 10, 5
src = sqlite3.connect(small)
db = sqlite3.connect(out)
db.execute("PRAGMA journal_mode=OFF")
db.execute("PRAGMA synchronous=OFF")
schema = [sql for (sql,) in src.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'")]
for sql in schema:
    if not sql.startswith("CREATE INDEX"):
        db.execute(sql)
meta = dict(src.execute("SELECT key, value FROM meta"))
meta.update(n_layers=L, ffn_dim=F, vocab_size=V, dim=4096, matrices="up", layers="0-31", neurons="0-14335",
            model_path="(synthetic 8B-shaped atlas)", model_identity="0", content_identity="0")
db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
rng = random.Random(1)
db.executemany("INSERT INTO tokens VALUES (?, ?, 1)", ((i, ("tok%d" % i).encode()) for i in range(V)))
def rows():
    for l in range(L):
        for n in range(F):
            ids = rng.sample(range(V), TOP + BOTTOM)
            logits = sorted((rng.gauss(8, 2) for _ in range(TOP)), reverse=True) + sorted(rng.gauss(-8, 2) for _ in range(BOTTOM))
            lse = logits[0] + 2.0
            for r in range(TOP):
                yield ("up", l, n, r + 1, ids[r], logits[r], math.exp(logits[r] - lse))
            for r in range(BOTTOM):
                yield ("up", l, n, -(r + 1), ids[TOP + r], logits[TOP + r], math.exp(logits[TOP + r] - lse))
db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", rows())
db.executemany("INSERT INTO neurons(matrix, layer, neuron, lse, lse_bound, nonfinite) VALUES ('up', ?, ?, 10.0, 0, 0)",
               ((l, n) for l in range(L) for n in range(F)))
for sql in schema:
    if sql.startswith("CREATE INDEX"):  # after the rows: one sort instead of 7M inserts into it
        db.execute(sql)
db.commit()
db.close()
