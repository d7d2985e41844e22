"""generate against `generate --compare --format json` with the same arguments."""
import pytest

from conftest import cli_json, model_args

CASES = [
    # (python keyword arguments, the same as CLI options)
    (dict(n=20), ["-n", "20"]),
    (dict(prompt="Once upon a time", n=24, clamp={(1, 0): 10}, temperature=0),
     ["-p", "Once upon a time", "-n", "24", "--clamp", "1:0=10", "--temp", "0"]),
    (dict(prompt="Lily", n=16, clamp={"2:5": -3.5}, scale={(4, 7): 0}, site="act", seed=7),
     ["-p", "Lily", "-n", "16", "--clamp", "2:5=-3.5", "--scale", "4:7=0", "--clamp-site", "act", "--seed", "7"]),
    (dict(prompt="The dog", n=12, clamp=["0:1,2,3=4"], positions="generated", temperature=0.7, top_p=0.5, seed=3),
     ["-p", "The dog", "-n", "12", "--clamp", "0:1,2,3=4", "--clamp-positions", "generated", "--temp", "0.7",
      "--top-p", "0.5", "--seed", "3"]),
]


@pytest.mark.parametrize("kw,args", CASES)
def test_generate_equals_cli(models, form, kw, args):
    got = models[form].generate(**kw)
    want = cli_json("generate", *model_args(form), *args, "--compare", "--format", "json")
    assert got == want
    assert len(got["baseline"]["ids"]) <= kw["n"]
    if "clamp" in kw:
        assert got["clamped"]["ids"] != got["baseline"]["ids"]  # the hooks change the text


def test_generate_defaults(models):
    """The CLI's defaults: 128 tokens from BOS, temperature 1, top-p 0.9, seed 0."""
    got = models["bin"].generate()
    assert got == cli_json("generate", *model_args("bin"), "--compare", "--format", "json")
    assert got["prompt_ids"] == [1] and "clamped" not in got
    assert "baseline" in repr(got) and "<table>" in got._repr_html_()


def test_generate_errors(neuromap, models):
    m = models["bin"]
    for kw in (dict(clamp={(5, 0): 1}), dict(clamp={(0, 172): 1}), dict(clamp=["1:0=nan"]), dict(site="down"),
               dict(positions="some"), dict(n=0), dict(temperature=-1), dict(top_p=0), dict(chat=True),
               dict(seed=-1)):
        with pytest.raises(neuromap.InputError):
            m.generate("Hi", **kw)
