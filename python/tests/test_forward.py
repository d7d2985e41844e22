"""activations against a float64 llama2.c forward pass written here in numpy."""
import numpy as np
import pytest


def rmsnorm(x, g, eps=1e-5):
    return g * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)


def reference_activations(w, ids, clamp=None, site="up", logits=False):
    """llama2.c's forward (run.c) for every position at once, float64: the
    gated MLP activation silu(gate x) * (up x) of each layer, (T, L, hidden);
    with logits, also the next-token logits (T, vocab). clamp {(L, N): V}
    fixes up x (site up) or the activation (site act) of those neurons."""
    clamp = clamp or {}
    c = w["cfg"]
    T, hs, nh, nkv = len(ids), c["head_size"], c["n_heads"], c["n_kv_heads"]
    x = w["embed"][ids]
    # RoPE on interleaved pairs (2i, 2i+1): frequency 10000^(-2i/head_size) within each head.
    pos = np.arange(T)[:, None]
    freq = 1.0 / 10000.0 ** (np.arange(0, hs, 2) / hs)
    ang = pos * freq[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(v, heads):  # v: T x (heads*hs)
        v = v.reshape(T, heads, hs // 2, 2)
        a, b = v[..., 0], v[..., 1]
        ca, sa = cos[:, None, :], sin[:, None, :]
        return np.stack([a * ca - b * sa, a * sa + b * ca], axis=-1).reshape(T, heads * hs)

    mask = np.triu(np.full((T, T), -np.inf), 1)
    acts = []
    for l in range(c["n_layers"]):
        xb = rmsnorm(x, w["rms_att"][l])
        q = rope(xb @ w["wq"][l].T, nh).reshape(T, nh, hs)
        k = rope(xb @ w["wk"][l].T, nkv).reshape(T, nkv, hs)
        v = (xb @ w["wv"][l].T).reshape(T, nkv, hs)
        out = np.empty((T, nh, hs))
        for h in range(nh):
            kv = h // (nh // nkv)
            s = q[:, h] @ k[:, kv].T / np.sqrt(hs) + mask
            p = np.exp(s - s.max(axis=1, keepdims=True))
            out[:, h] = (p / p.sum(axis=1, keepdims=True)) @ v[:, kv]
        x = x + out.reshape(T, nh * hs) @ w["wo"][l].T
        xb = rmsnorm(x, w["rms_ffn"][l])
        g, u = xb @ w["gate"][l].T, xb @ w["up"][l].T
        for (cl, cn), v in clamp.items():
            if cl == l and site == "up":
                u[:, cn] = v
        act = g / (1 + np.exp(-g)) * u
        for (cl, cn), v in clamp.items():
            if cl == l and site == "act":
                act[:, cn] = v
        acts.append(act)
        x = x + act @ w["down"][l].T
    if logits:
        return np.stack(acts, axis=1), rmsnorm(x, w["rms_final"]) @ w["head"].T
    return np.stack(acts, axis=1)


TEXTS = ["Once upon a time, there was a little girl named Lily.", "The end.", "a"]


@pytest.mark.parametrize("text", TEXTS)
def test_activations_against_float64(models, weights, text):
    m = models["bin"]
    ids = m.tokenize(text)
    got = m.activations(text)
    assert got.dtype == np.float32 and got.shape == (len(ids), 5, 172) and ids[0] == 1
    ref = reference_activations(weights, ids)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4 * scale)
    if len(ids) > 2:  # the comparison can fail: one position later is different
        assert np.abs(got[1:] - ref[:-1]).max() > 1e-2 * scale


def test_activations_same_in_every_format(models):
    text = TEXTS[0]
    base = models["bin"].activations(text)
    for form in ("gguf", "hf"):  # HF permutes q/k rows for rotate-half: the library undoes it
        np.testing.assert_allclose(models[form].activations(text), base, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(models["bin"].activations(models["bin"].tokenize(text)), base)  # ids in


def test_activations_errors(neuromap, models):
    m = models["bin"]
    with pytest.raises(IndexError):
        m.activations([1, 512])
    with pytest.raises(neuromap.InputError, match="context"):
        m.activations([1] * 513)
    with pytest.raises(neuromap.InputError):
        m.activations([])


@pytest.mark.parametrize("clamp,site", [(None, "up"), ({(1, 0): 8.0}, "up"), ({(1, 0): 8.0, (3, 100): -2.5}, "act")])
def test_forward_logits_against_float64(models, weights, clamp, site):
    m = models["bin"]
    text = TEXTS[0]
    got = m.forward(text, clamp=clamp, site=site)
    ids = m.tokenize(text)
    assert got.dtype == np.float32 and got.shape == (len(ids), 512)
    _, ref = reference_activations(weights, ids, clamp=clamp, site=site, logits=True)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4 * np.abs(ref).max())
    if clamp:  # the hook matters: the unhooked reference is far off
        _, plain = reference_activations(weights, ids, logits=True)
        assert np.abs(got - plain).max() > 0.1


def test_forward_equals_probe_sweep(models):
    """softmax of the last position's logits is probe's P(target), for every clamp value of a sweep."""
    import json
    from conftest import cli, model_args
    m, prompt, values = models["gguf"], "Tom had a friend", [-8, 0, 4.5, 12]
    doc = json.loads(cli("probe", *model_args("gguf"), "-p", prompt, "--target", " named", "--sweep",
                         "1:0=" + ",".join(str(v) for v in values), "--clamp-positions", "generated", "--format",
                         "json")[1])
    target = doc["target_ids"][0]

    def prob(lg):
        lg = lg.astype(np.float64)
        p = np.exp(lg - lg.max())
        return p[target] / p.sum()

    assert prob(m.forward(prompt)[-1]) == pytest.approx(doc["baseline"]["prob"], rel=1e-5)
    got = [prob(m.forward(prompt, clamp={(1, 0): v}, positions="generated")[-1]) for v in values]
    want = [pt["prob"] for pt in doc["sweep"]["points"]]
    assert got == pytest.approx(want, rel=1e-5)
    assert max(want) - min(want) > 0.05  # the sweep moves the probability
