"""Fixtures for the binding's tests: the test data, the CLI to compare with.

Run from the repository root by tests/cli_python.sh (make test), or by hand:
    NEUROMAP_SHARED=../shared PYTHONPATH=python python3 -m pytest python/tests
NEUROMAP_BIN names the neuromap program whose JSON the binding must equal
(default ./neuromap), NEUROMAP_LIB the library (default: found by the package).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
SHARED = os.path.abspath(os.environ.get("NEUROMAP_SHARED", os.path.join(ROOT, "..", "shared")))
BIN = os.path.abspath(os.environ.get("NEUROMAP_BIN", os.path.join(ROOT, "neuromap")))
S = os.path.join(SHARED, "models", "stories260K")
BIN_MODEL = os.path.join(S, "stories260K.bin")
TOK = os.path.join(S, "tok512.bin")
GGUF_MODEL = os.path.join(S, "stories260K.gguf")
HF_MODEL = os.path.join(SHARED, "models", "stories260K-hf")
HF_BF16_MODEL = os.path.join(SHARED, "models", "stories260K-hf-bf16-sharded")

# The forms of stories260K: (path, tokenizer). The BF16 shards take the lens's
# other path (a head converted tile by tile, or once for a map).
FORMS = {"bin": (BIN_MODEL, TOK), "gguf": (GGUF_MODEL, None), "hf": (HF_MODEL, None),
         "hf-bf16": (HF_BF16_MODEL, None)}


def cli(*args, check=True):
    """Runs the neuromap program; returns (exit status, stdout bytes, stderr text)."""
    p = subprocess.run([BIN] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and p.returncode != 0:
        raise AssertionError("neuromap %s exited %d: %s" % (" ".join(map(str, args)), p.returncode, p.stderr.decode()))
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def cli_json(*args):
    return json.loads(cli(*args)[1])


def model_args(form):
    path, tok = FORMS[form]
    return [path] + (["--tokenizer", tok] if tok else [])


@pytest.fixture(scope="session")
def neuromap():
    import neuromap as nm
    return nm


@pytest.fixture(scope="session", params=sorted(FORMS))
def form(request):
    return request.param


@pytest.fixture(scope="session")
def models(neuromap):
    """Every form of stories260K, opened once."""
    opened = {f: neuromap.Model(p, tokenizer=t) for f, (p, t) in FORMS.items()}
    yield opened
    for m in opened.values():
        m.close()


def read_llama2c(path):
    """stories260K.bin's weights with numpy, from llama2.c's layout (independent of the library)."""
    raw = np.fromfile(path, dtype=np.uint8)
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = np.frombuffer(raw[:28].tobytes(), dtype=np.int32)
    shared = vocab > 0
    vocab = abs(int(vocab))
    f = np.frombuffer(raw[28:].tobytes(), dtype=np.float32)
    head_size = dim // n_heads
    kv_dim = n_kv_heads * head_size
    w, at = {}, 0

    def take(name, *shape):
        nonlocal at
        n = int(np.prod(shape))
        w[name] = f[at:at + n].reshape(shape).astype(np.float64)
        at += n

    take("embed", vocab, dim)
    take("rms_att", n_layers, dim)
    take("wq", n_layers, dim, dim)
    take("wk", n_layers, kv_dim, dim)
    take("wv", n_layers, kv_dim, dim)
    take("wo", n_layers, dim, dim)
    take("rms_ffn", n_layers, dim)
    take("gate", n_layers, hidden, dim)
    take("down", n_layers, dim, hidden)
    take("up", n_layers, hidden, dim)
    take("rms_final", dim)
    at += 2 * seq_len * head_size // 2  # freq_cis real and imaginary
    w["head"] = w["embed"] if shared else f[at:at + vocab * dim].reshape(vocab, dim).astype(np.float64)
    w["cfg"] = dict(dim=int(dim), hidden=int(hidden), n_layers=int(n_layers), n_heads=int(n_heads),
                    n_kv_heads=int(n_kv_heads), vocab=vocab, seq_len=int(seq_len), head_size=int(head_size))
    return w


@pytest.fixture(scope="session")
def weights():
    return read_llama2c(BIN_MODEL)
