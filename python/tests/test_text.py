"""tokenize / detokenize against llama.cpp's vectors and the CLI."""
import json
import os

import pytest

from conftest import FORMS, HF_MODEL, SHARED, cli, model_args

VECTORS = os.path.join(SHARED, "tokenizers", "vectors")
SEP = b"\n__ggml_vocab_test__\n"


def llama_cpp_vectors(name):
    """(text bytes, ids) pairs of llama.cpp's test-tokenizer-0 files (README there)."""
    with open(os.path.join(VECTORS, name + ".inp"), "rb") as f:
        inp = f.read()
    tests = inp.split(SEP)
    assert tests[-1] == b""
    with open(os.path.join(VECTORS, name + ".out")) as f:
        outs = f.read().split("\n")[:-1]
    assert len(tests) - 1 == len(outs) == 46
    return [(t, [int(x) for x in o.split()]) for t, o in zip(tests[:-1], outs)]


@pytest.mark.parametrize("name", ["ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-bpe.gguf"])
def test_tokenize_llama_cpp_vectors(neuromap, name):
    with neuromap.Model(os.path.join(VECTORS, name)) as m:
        assert not m.has_weights
        for text, ids in llama_cpp_vectors(name):
            assert m.tokenize(text, bos=False) == ids, text
            if ids:
                assert m.tokenize(text)[1:] == ids  # add_bos: BOS first by default


def test_tokenize_hf_vectors(models):
    with open(os.path.join(HF_MODEL, "tokenizer_vectors.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    for r in rows:
        for form in FORMS:
            special = r.get("special", False)  # lines with <s>, </s>: ids with special-token parsing
            assert models[form].tokenize(r["text"], bos=False, special=special) == r["ids"], (form, r["text"])


@pytest.mark.parametrize("text", ["Once upon a time", "The end.</s>", "Lily and Ben\n", "a"])
def test_tokenize_equals_cli(models, form, text):
    want = [int(x) for x in cli("tokenize", *model_args(form), text, "--format", "ids")[1].split()]
    assert models[form].tokenize(text) == want
    no_bos = [int(x) for x in cli("tokenize", *model_args(form), text, "--no-bos", "--format", "ids")[1].split()]
    assert models[form].tokenize(text, bos=False) == no_bos
    special = [int(x) for x in cli("tokenize", *model_args(form), text, "--special", "--format", "ids")[1].split()]
    assert models[form].tokenize(text, special=True) == special


def test_tokenize_specials(models):
    m = models["bin"]
    assert m.tokenize("The end.</s>", bos=False) == [291, 344, 264, 426, 504, 492, 419, 505]
    assert m.tokenize("The end.</s>", bos=False, special=True) == [291, 344, 264, 426, 2]
    assert m.tokenize(b"Once upon a time") == [1, 403, 407, 261, 378]  # bytes as they are


@pytest.mark.parametrize("ids,special", [([1, 403, 407, 261, 378, 2], False), ([1, 403, 407, 261, 378, 2], True),
                                         ([13, 13, 291], False), ([], False)])
def test_detokenize_equals_cli(models, form, ids, special):
    args = ["--decode", " ".join(map(str, ids))] + (["--special"] if special else [])
    want = cli("tokenize", *model_args(form), *args, "--format", "ids")[1] if ids else b""
    assert models[form].detokenize(ids, special=special, raw=True) == want
    assert models[form].detokenize(ids, special=special) == want.decode("utf-8", "replace")


def test_detokenize_examples(models):
    m = models["bin"]
    assert m.detokenize([1, 403, 407, 261, 378, 2]) == "Once upon a time"
    assert m.detokenize([1, 403, 407, 261, 378, 2], special=True) == "<s> Once upon a time</s>"
    import numpy as np
    assert m.detokenize(np.array([403, 407], dtype=np.int64)) == "Once upon"
