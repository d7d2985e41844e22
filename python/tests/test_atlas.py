"""neuromap.Atlas against show/find/export of the same atlas."""
import json

import pytest

from conftest import GGUF_MODEL, cli, cli_json


@pytest.fixture(scope="session")
def atlas_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("atlas") / "s.atlas.db"
    cli("map", GGUF_MODEL, "--matrix", "all", "--top-k", "8", "--bottom-k", "3", "-o", p)
    return p


@pytest.fixture(scope="session")
def atlas(neuromap, atlas_path):
    with neuromap.Atlas(atlas_path) as a:
        yield a


def test_info(atlas):
    i = atlas.info
    assert (i["top_k"], i["bottom_k"], i["norm"], i["matrices"], i["layers"]) == (8, 3, "full", "up,gate,down", "0-4")
    assert i["model_path"] == GGUF_MODEL and i["vocab_size"] == 512


@pytest.mark.parametrize("layer,neuron,matrix,k", [(0, 0, "up", []), (3, 17, "gate", [2, 3]), (4, 171, "down", [8, 0])])
def test_neuron_equals_show(atlas, atlas_path, layer, neuron, matrix, k):
    # Both K given: show checks an unspecified one at its model default (5) against the stored 3.
    kw = {"top_k": k[0], "bottom_k": k[1]} if k else {}
    k = ["--top-k", k[0], "--bottom-k", k[1]] if k else []
    want = cli_json("show", atlas_path, "%d:%d" % (layer, neuron), "--matrix", matrix, *k, "--format", "json")
    assert atlas.neuron(layer, neuron, matrix=matrix, **kw) == want


def test_neuron_equals_the_models_decode(neuromap, atlas):
    """What map stored is what the model decodes (same top-k)."""
    with neuromap.Model(GGUF_MODEL) as m:
        got, want = atlas.neuron(2, 9, "down"), m.decode(2, 9, "down", top_k=8, bottom_k=3)
        assert [t["token_id"] for t in got["top"]] == [t["token_id"] for t in want["top"]]


@pytest.mark.parametrize("text,matrix,limit", [(" named", "up", 20), (" happy", "all", 5), (" Lily", "down", 3)])
def test_find_equals_cli(atlas, atlas_path, text, matrix, limit):
    want = cli_json("find", atlas_path, text, "--matrix", matrix, "--limit", limit, "--format", "json")
    got = atlas.find(text, matrix=matrix, limit=limit)
    assert got == want and got["source"] == "atlas"


def test_records_equal_export(atlas, atlas_path):
    want = [json.loads(line) for line in cli("export", atlas_path, "--format", "jsonl")[1].splitlines()]
    got = list(atlas.records())
    assert len(got) == 3 * 5 * 172 and got == want


def test_errors(neuromap, atlas, atlas_path):
    with pytest.raises(neuromap.InputError) as e:
        atlas.neuron(0, 0, top_k=9)
    assert str(e.value) == cli("show", atlas_path, "0:0", "--top-k", 9, check=False)[2].strip()[len("neuromap: "):]
    with pytest.raises(neuromap.InputError):
        atlas.neuron(7, 0)
    with pytest.raises(neuromap.InputError) as e:
        atlas.find(" Lilyx")
    assert str(e.value) == cli("find", atlas_path, " Lilyx", check=False)[2].strip()[len("neuromap: "):]
    with pytest.raises(neuromap.InputError, match="not an atlas"):
        neuromap.Atlas(GGUF_MODEL)


def test_to_pandas(atlas):
    pd = pytest.importorskip("pandas")
    df = atlas.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 3 * 5 * 172 * 11
