"""Errors carry the CLI's message; nothing a caller passes crashes; the GIL is let go."""
import os
import threading
import time

import numpy as np
import pytest

from conftest import BIN_MODEL, cli, model_args


def cli_message(*args):
    rc, _, err = cli(*args, check=False)
    assert rc == 2, err
    return err.strip().splitlines()[-1][len("neuromap: "):]


def test_hierarchy(neuromap):
    assert issubclass(neuromap.InputError, neuromap.Error) and issubclass(neuromap.InputError, ValueError)
    assert issubclass(neuromap.RunError, neuromap.Error) and issubclass(neuromap.RunError, RuntimeError)
    assert issubclass(neuromap.NeuronIndexError, IndexError) and issubclass(neuromap.NeuronIndexError, neuromap.Error)


def test_open_errors_are_the_clis(neuromap, tmp_path):
    for args in ([str(tmp_path / "nope.gguf")], [BIN_MODEL]):  # missing file; .bin without its tokenizer
        with pytest.raises(neuromap.Error) as e:
            neuromap.Model(*args)
        assert e.value.code == 2 and isinstance(e.value, ValueError)
        assert str(e.value) == cli_message("info", *args)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 60)
    with pytest.raises(neuromap.Error) as e:
        neuromap.Model(bad)
    assert str(e.value) == cli_message("info", bad)


def test_find_errors_are_the_clis(models):
    m = models["bin"]
    for text in (" Lilyx", " cat"):
        with pytest.raises(ValueError) as e:
            m.find(text)
        assert str(e.value) == cli_message("find", *model_args("bin"), text)


def test_bad_arguments(neuromap, models):
    m = models["gguf"]
    for call in (lambda: m.decode(0, 0, matrix="side"), lambda: m.decode(0, 0, norm="half"),
                 lambda: m.logits(0, 0, matrix="x"), lambda: m.map(matrix="left"), lambda: m.find(" happy", matrix="x"),
                 lambda: m.find(" happy", limit=0), lambda: m.find(""), lambda: m.decode(0, 0, top_k=-1),
                 lambda: m.decode(0, 0, top_k=513), lambda: m.map(top_k=-3), lambda: m.decode(0, 0, threads=-1),
                 lambda: m.map(layers=[0, 2]), lambda: m.decode(0, 0, top_k=10**12), lambda: m.map(matrix="all"),
                 lambda: m.find(" happy", limit=2**40), lambda: m.generate(n=2**33), lambda: m.generate(seed=2**70)):
        with pytest.raises(neuromap.InputError):
            call()
    with pytest.raises(TypeError):
        m.decode("0", 0)
    with pytest.raises(TypeError):
        m.tokenize(42)


@pytest.mark.parametrize("layer,neuron", [(5, 0), (-1, 0), (0, 172), (0, -1), (2**31, 0), (0, 2**40)])
def test_out_of_range_is_index_error(models, layer, neuron):
    m = models["hf"]
    for call in (m.decode, m.logits):
        with pytest.raises(IndexError, match="outside the model"):
            call(layer, neuron)


def test_out_of_range_is_refused_by_the_library_too(neuromap, models):
    """The C side checks as well: a caller that skips the Python checks gets an error, not a crash."""
    import ctypes
    from neuromap import _lib
    m = models["bin"]
    out = np.zeros(4, np.float32)  # too small for the vocabulary
    with pytest.raises(neuromap.InputError, match="room for 512"):
        _lib.call(_lib.lib.api_logits, m._h.value, b"up", 0, 0, b"full", _lib.ptr(out), out.size)
    with pytest.raises(neuromap.InputError, match="outside the model"):
        _lib.call(_lib.lib.api_logits, m._h.value, b"up", 9, 0, b"full", _lib.ptr(out), out.size)
    with pytest.raises(neuromap.InputError, match="hold 3 neurons"):
        _lib.call(_lib.lib.api_map, m._h.value, b"up", 0, 0, 1, 0, b"full", 0, _lib.ptr(np.zeros(3, np.int32)), None, None,
                  None, None, None, None, None, 3)
    with pytest.raises(neuromap.InputError, match="not a token id"):
        _lib.call(_lib.lib.api_detokenize, m._h.value, _lib.ptr(np.array([1, 9999], np.int32)), 2, 0,
                  ctypes.byref(ctypes.c_void_p()), ctypes.byref(ctypes.c_size_t()))


def test_token_ids_checked(models):
    m = models["bin"]
    for ids in ([1, 512], [-1], [2**40]):
        with pytest.raises(IndexError, match="is not a token id"):
            m.detokenize(ids)
    with pytest.raises(TypeError):
        m.detokenize([1.5])


def test_vocabulary_only_model(neuromap):
    vectors = os.path.join(os.environ.get("NEUROMAP_SHARED", "../shared"), "tokenizers", "vectors")
    with neuromap.Model(os.path.join(vectors, "ggml-vocab-llama-spm.gguf")) as m:
        assert m.tokenize("Hello world") == [1, 15043, 3186]
        assert m.info["has_weights"] is False
        with pytest.raises(neuromap.InputError, match="no weights"):
            m.decode(0, 0)
        with pytest.raises(neuromap.InputError, match="no weights"):
            m.find("Hello")


def test_close_and_context_manager(neuromap):
    m = neuromap.Model(BIN_MODEL, tokenizer=BIN_MODEL.replace("stories260K.bin", "tok512.bin"))
    with m:
        assert m.tokenize("a", bos=False) == [261]
    with pytest.raises(neuromap.Error, match="closed"):
        m.decode(0, 0)
    m.close()  # twice is fine


def test_no_leak_over_many_calls(neuromap, models):
    """Every string and array the library hands back is freed: the process
    does not grow. Each call hands back 20-40 KB, so a leak would be 3 MB or more."""
    m = models["bin"]
    text = "Once upon a time " * 1000
    ids = m.tokenize(text)

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    for call in (lambda: m.decode(1, 2, top_k=512, threads=1), lambda: m.tokenize(text), lambda: m.detokenize(ids)):
        for _ in range(20):
            call()
        before = rss()
        for _ in range(150):
            call()
        assert rss() - before < 2 << 20


@pytest.fixture(scope="session")
def big_model(tmp_path_factory):
    """A synthetic model whose map takes a while on one thread (neuromap synth)."""
    out = tmp_path_factory.mktemp("synth") / "big.gguf"
    cli("synth", out, "--hidden", 256, "--ffn", 2048, "--layers", 2, "--vocab", 4096, "--heads", 4, "--kv-heads", 4)
    return out


def test_gil_released_during_map(neuromap, big_model):
    """A map runs while another Python thread keeps running: ticks of the main
    thread fall inside the C call (with the GIL held there would be none)."""
    with neuromap.Model(big_model) as m:
        span = {}

        def work():
            span["start"] = time.monotonic()
            span["result"] = m.map(threads=1, top_k=1, bottom_k=0)
            span["end"] = time.monotonic()

        t = threading.Thread(target=work)
        ticks = []
        t.start()
        while t.is_alive():
            ticks.append(time.monotonic())
        t.join()
        assert span["result"].ids.shape == (2 * 2048, 1)
        inside = [x for x in ticks if span["start"] + 0.02 < x < span["end"] - 0.02]
        duration = span["end"] - span["start"]
        assert duration > 0.1, "the map was too quick to tell (%.3f s)" % duration
        assert len(inside) > 1000, "%d ticks in %.3f s" % (len(inside), duration)
        # And spread over the call, not bunched at one end: a tick in each tenth of it.
        tenths = {int(10 * (x - span["start"]) / duration) for x in inside}
        assert len(tenths) >= 8, sorted(tenths)


def test_close_waits_for_a_running_call(neuromap, big_model):
    """close() in one thread while a map runs in another: the map finishes, then the model is freed."""
    m = neuromap.Model(big_model)
    span = {}

    def work():
        span["start"] = time.monotonic()
        span["result"] = m.map(threads=1, top_k=1, bottom_k=0)
        span["end"] = time.monotonic()

    t = threading.Thread(target=work)
    t.start()
    while "start" not in span:
        time.sleep(0.001)
    time.sleep(0.02)
    m.close()
    closed = time.monotonic()
    t.join()
    assert span["result"].ids.shape == (4096, 1) and closed >= span["end"]
    with pytest.raises(neuromap.Error, match="closed"):
        m.map()


def test_threads_share_a_model(models):
    """Calls from several threads at once give what one thread gets."""
    m = models["hf"]
    want = [m.decode(l, n) for l in range(5) for n in (0, 50)] + [m.tokenize("Once upon a time " * 10)]
    results = [None] * 4

    def work(i):
        results[i] = [m.decode(l, n) for l in range(5) for n in (0, 50)] + [m.tokenize("Once upon a time " * 10)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == want for r in results)
