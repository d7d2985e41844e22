"""The lens from Python against the CLI's JSON and a float64 reference."""
import json

import numpy as np
import pytest

from conftest import cli, cli_json, model_args

NEURONS = [(0, 0, "up"), (3, 17, "up"), (4, 171, "gate"), (1, 56, "down"), (2, 99, "down")]


def test_info_equals_cli(models, form):
    assert models[form].info == cli_json("info", *model_args(form), "--format", "json")
    m = models[form]
    assert (m.n_layers, m.ffn, m.vocab_size, m.dim) == (5, 172, 512, 64)


@pytest.mark.parametrize("layer,neuron,matrix", NEURONS)
def test_decode_equals_show(models, form, layer, neuron, matrix):
    got = models[form].decode(layer, neuron, matrix=matrix)
    want = cli_json("show", *model_args(form), "%d:%d" % (layer, neuron), "--matrix", matrix, "--format", "json")
    assert got == want
    assert len(got["top"]) == 10 and len(got["bottom"]) == 5  # the CLI's defaults


@pytest.mark.parametrize("norm,top_k,bottom_k", [("gain", 3, 0), ("none", 0, 7), ("full", 512, 1)])
def test_decode_options_equal_show(models, norm, top_k, bottom_k):
    got = models["bin"].decode(2, 5, matrix="gate", top_k=top_k, bottom_k=bottom_k, norm=norm)
    want = cli_json("show", *model_args("bin"), "2:5", "--matrix", "gate", "--norm", norm, "--top-k", top_k,
                    "--bottom-k", bottom_k, "--format", "json")
    assert got == want


@pytest.mark.parametrize("text,extra", [(" named", []), (" happy", ["--matrix", "all"]), ("Lily", ["--agreement"]),
                                        (" the", ["--matrix", "down", "--limit", "7", "--norm", "gain"])])
def test_find_equals_cli(models, form, text, extra):
    kw = {}
    args = list(extra)
    while args:
        opt, args = args[0], args[1:]
        if opt == "--agreement":
            kw["agreement"] = True
            continue
        val, args = args[0], args[1:]
        kw[{"--matrix": "matrix", "--limit": "limit", "--norm": "norm"}[opt]] = int(val) if opt == "--limit" else val
    got = models[form].find(text, **kw)
    assert got == cli_json("find", *model_args(form), text, *extra, "--format", "json")
    assert len(got["neurons"]) == kw.get("limit", 20)


def test_find_first_piece(models):
    m = models["bin"]
    with pytest.raises(ValueError, match="tokens: .*--first-piece"):
        m.find(" Lilyx")
    got = m.find(" Lilyx", first_piece=True)
    assert got == cli_json("find", *model_args("bin"), " Lilyx", "--first-piece", "--format", "json")


def reference_logits(w, layer, neuron, matrix, norm, eps=1e-5):
    """The lens in float64 from the weights numpy read: W_U (g * v / rms(v))."""
    v = w[matrix][layer][neuron] if matrix != "down" else w["down"][layer][:, neuron]
    if norm == "full":
        v = w["rms_final"] * v / np.sqrt(np.mean(v * v) + eps)
    elif norm == "gain":
        v = w["rms_final"] * v
    return w["head"] @ v


@pytest.mark.parametrize("layer,neuron,matrix", NEURONS)
@pytest.mark.parametrize("norm", ["full", "gain", "none"])
def test_logits_against_float64(models, weights, layer, neuron, matrix, norm):
    got = models["bin"].logits(layer, neuron, matrix=matrix, norm=norm)
    assert got.dtype == np.float32 and got.shape == (512,)
    ref = reference_logits(weights, layer, neuron, matrix, norm)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6 * scale * 10)
    # The neighbouring neuron is a different vector: the comparison can fail.
    other = reference_logits(weights, layer, (neuron + 1) % 172, matrix, norm)
    assert np.abs(got - other).max() > 1e-3 * scale


def test_logits_agree_with_decode_and_other_formats(models):
    for layer, neuron, matrix in NEURONS:
        lg = models["bin"].logits(layer, neuron, matrix=matrix)
        doc = models["bin"].decode(layer, neuron, matrix=matrix, top_k=5, bottom_k=0)
        assert [t["token_id"] for t in doc["top"]] == list(np.argsort(-lg, kind="stable")[:5])
        for form in ("gguf", "hf"):
            np.testing.assert_allclose(models[form].logits(layer, neuron, matrix=matrix), lg, rtol=0, atol=1e-4)


def map_jsonl(form, *extra):
    out = cli("map", *model_args(form), "--format", "jsonl", *extra)[1]
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("layers,matrix,flags", [(None, "up", []), (2, "down", ["--layers", "2"]),
                                                 ("1-3", "gate", ["--layers", "1-3"])])
def test_map_equals_jsonl(models, form, layers, matrix, flags):
    got = models[form].map(layers=layers, matrix=matrix)
    want = map_jsonl(form, "--matrix", matrix, *flags)
    n = len(want)
    assert got.ids.shape == (n, 10) and got.probs.shape == (n, 10) and got.bottom_ids.shape == (n, 5)
    assert got.ids.dtype == np.int32 and got.logits.dtype == np.float32
    for i, rec in enumerate(want):
        assert (got.layer[i], got.neuron[i]) == (rec["layer"], rec["neuron"])
        assert got.ids[i].tolist() == [t["token_id"] for t in rec["top"]]
        assert got.bottom_ids[i].tolist() == [t["token_id"] for t in rec["bottom"]]
        assert got.logits[i].tolist() == [np.float32(t["logit"]) for t in rec["top"]]
        assert got.probs[i].tolist() == [np.float32(t["prob"]) for t in rec["top"]]
        assert models[form].tokens(got.ids[i]) == [t["token"] for t in rec["top"]]
        assert got.lse[i] == pytest.approx(rec["lse"], rel=1e-14, abs=0)  # cJSON prints 15 digits of a double
    assert not got.nonfinite.any()


def test_map_top_k(models):
    got = models["bin"].map(layers=range(0, 2), top_k=3, bottom_k=0)
    assert got.ids.shape == (344, 3) and got.bottom_ids.shape == (344, 0)
    want = map_jsonl("bin", "--layers", "0-1", "--top-k", "3", "--bottom-k", "0")
    assert got.ids.tolist() == [[t["token_id"] for t in r["top"]] for r in want]


def test_reprs(models):
    m = models["bin"]
    d = m.decode(1, 0)
    assert "up 1:0" in repr(d) and "<table>" in d._repr_html_()
    f = m.find(" named", limit=3)
    assert '" named"' in repr(f) and f._repr_html_().count("<tr>") == 4
    assert "172 neurons" in repr(m.map(layers=0))


def test_tokens(models):
    m = models["bin"]
    assert m.tokens([317, 1, 13, 191]) == [" Lily", "<s>", "\n", "\\xBC"]  # a lone byte escaped, as the documents write it
    assert m.tokens([]) == []
    with pytest.raises(IndexError):
        m.tokens([512])
