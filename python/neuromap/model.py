"""model — neuromap.Model: a checkpoint opened through libneuromap."""
import ctypes
import json

import numpy as np

from ._lib import Closable, Handle, call, cstr, lib, ptr, take_bytes
from .errors import InputError, NeuronIndexError
from .results import FindResult, GenerateResult, InfoResult, MapResult, NeuronResult


def _json(ptr_value):
    return json.loads(take_bytes(ptr_value).decode("utf-8"))


def _int(x, what, bits=32):
    """An int argument for the library: a TypeError for another type, an
    InputError beyond what the C type holds (ctypes would raise its own)."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError("%s must be an int, not %s" % (what, type(x).__name__))
    if not -(1 << (bits - 1)) <= int(x) < 1 << (bits - 1):
        raise InputError("%s %d is out of range" % (what, x))
    return int(x)


def _number(v):
    """A hook value as the command line would spell it: 10, 2.5, -1e-05."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    return repr(float(v))


def _hook_specs(hooks):
    """{(L, N): V} / {"L:N": V} / ["L:N=V", ...] → ["L:N=V", ...] as bytes."""
    if not hooks:
        return []
    if isinstance(hooks, dict):
        specs = []
        for k, v in hooks.items():
            where = "%d:%d" % (_int(k[0], "layer"), _int(k[1], "neuron")) if isinstance(k, tuple) else str(k)
            specs.append("%s=%s" % (where, _number(v)))
    elif isinstance(hooks, str):
        specs = [hooks]
    else:
        specs = [str(x) for x in hooks]
    return [x.encode("utf-8") for x in specs]


def _c_strings(specs):
    return (ctypes.c_char_p * max(len(specs), 1))(*specs)


class Model(Closable):
    """A checkpoint: a Hugging Face directory, a GGUF file, or a llama2.c .bin
    (with tokenizer="tok512.bin"). Use it as a context manager, or close()
    it; every method raises neuromap.Error on failure (see neuromap.errors).

    Defaults equal the CLI's. Calls may come from several threads at once;
    close() waits for those running."""

    def __init__(self, path, tokenizer=None):
        h = ctypes.c_void_p()
        self._h = None
        call(lib.api_model_open, ctypes.byref(h), cstr(str(path)), cstr(None if tokenizer is None else str(tokenizer)))
        self._h = Handle(h, lib.api_model_close, "model")
        shape = (ctypes.c_int32 * 5)()
        lib.api_model_shape(h, shape)
        self.has_weights, self.n_layers, self.ffn, self.vocab_size, self.dim = (int(v) for v in shape)
        self.has_weights = bool(self.has_weights)
        self.path = str(path)
        self._info = None

    def __repr__(self):
        return "neuromap.Model(%r: %d layers x %d neurons, vocabulary %d)" % (self.path, self.n_layers, self.ffn,
                                                                              self.vocab_size)

    # ---- checks done here so that they raise IndexError -----------------------
    def _check_neuron(self, layer, neuron):
        layer, neuron = _int(layer, "layer", 64), _int(neuron, "neuron", 64)
        if self.has_weights and not (0 <= layer < self.n_layers and 0 <= neuron < self.ffn):
            raise NeuronIndexError("neuron %d:%d is outside the model (%d layers of %d neurons)" %
                                   (layer, neuron, self.n_layers, self.ffn))
        return layer, neuron

    def _layers(self, layers):
        if layers is None:
            return 0, self.n_layers - 1
        if isinstance(layers, str):  # "A-B" or "A", as the CLI's --layers
            a, _, b = layers.partition("-")
            l0, l1 = int(a), int(b or a)
        elif isinstance(layers, (int, np.integer)):
            l0 = l1 = int(layers)
        else:
            ls = [_int(x, "layers") for x in layers]
            if not ls or ls != list(range(ls[0], ls[0] + len(ls))):
                raise InputError("layers must be consecutive (a range), not %r" % (layers,))
            l0, l1 = ls[0], ls[-1]
        if not (0 <= l0 <= l1 < self.n_layers):
            raise NeuronIndexError("layers %d-%d are outside the model (layers 0-%d)" % (l0, l1, self.n_layers - 1))
        return l0, l1

    # ---- what the model is ----------------------------------------------------
    @property
    def info(self):
        """`neuromap info MODEL --format json`'s document (a dict)."""
        if self._info is None:
            with self._h.use() as h:
                self._info = InfoResult(_json(lib.api_info_json(h)))
        return self._info

    # ---- the lens -------------------------------------------------------------
    def decode(self, layer, neuron, matrix="up", top_k=10, bottom_k=5, norm="full", threads=0):
        """One neuron's top and bottom tokens: `show MODEL L:N --format json`'s document."""
        layer, neuron = self._check_neuron(layer, neuron)
        out = ctypes.c_void_p()
        self._h.call(lib.api_show_json, cstr(matrix), layer, neuron, _int(top_k, "top_k"),
             _int(bottom_k, "bottom_k"), cstr(norm), _int(threads, "threads"), ctypes.byref(out))
        return NeuronResult(_json(out))

    def logits(self, layer, neuron, matrix="up", norm="full"):
        """The neuron's full logit vector (float32, vocabulary-sized), by the library's kernel."""
        layer, neuron = self._check_neuron(layer, neuron)
        out = np.empty(max(self.vocab_size, 0), dtype=np.float32)
        self._h.call(lib.api_logits, cstr(matrix), layer, neuron, cstr(norm), ptr(out), out.size)
        return out

    def map(self, layers=None, matrix="up", top_k=10, bottom_k=5, norm="full", threads=0):
        """Every neuron of the layers (None: all; an int; a range; "A-B"), as
        `map --format jsonl` computes them: a MapResult of arrays shaped
        (neurons, k). Runs without the GIL."""
        l0, l1 = self._layers(layers)
        top_k, bottom_k = _int(top_k, "top_k"), _int(bottom_k, "bottom_k")
        if top_k < 0 or bottom_k < 0:
            raise InputError("top_k and bottom_k must be >= 0")
        n = (l1 - l0 + 1) * self.ffn
        r = MapResult(matrix=matrix, norm=norm,
                      layer=np.repeat(np.arange(l0, l1 + 1, dtype=np.int32), self.ffn),
                      neuron=np.tile(np.arange(self.ffn, dtype=np.int32), l1 - l0 + 1),
                      ids=np.zeros((n, top_k), np.int32), logits=np.zeros((n, top_k), np.float32),
                      probs=np.zeros((n, top_k), np.float32), bottom_ids=np.zeros((n, bottom_k), np.int32),
                      bottom_logits=np.zeros((n, bottom_k), np.float32),
                      bottom_probs=np.zeros((n, bottom_k), np.float32), lse=np.zeros(n, np.float64),
                      nonfinite=np.zeros(n, np.bool_))
        self._h.call(lib.api_map, cstr(matrix), l0, l1, top_k, bottom_k, cstr(norm), _int(threads, "threads"),
             ptr(r["ids"]), ptr(r["logits"]), ptr(r["probs"]), ptr(r["bottom_ids"]), ptr(r["bottom_logits"]),
             ptr(r["bottom_probs"]), ptr(r["lse"]), ptr(r["nonfinite"]), n)
        return r

    def find(self, text, matrix="up", limit=20, norm="full", agreement=False, first_piece=False):
        """The neurons that most promote the token TEXT: `find MODEL TEXT --format json`'s document."""
        out = ctypes.c_void_p()
        self._h.call(lib.api_find_json, cstr(text), cstr(matrix), _int(limit, "limit"), cstr(norm),
             int(bool(agreement)), int(bool(first_piece)), ctypes.byref(out))
        return FindResult(_json(out))

    # ---- the forward pass -----------------------------------------------------
    def activations(self, text, bos=None, threads=0):
        """The gated MLP activations silu(gate·x)·(up·x) (the `act` site, what
        down_proj receives) at every token: float32 shaped (tokens, layers,
        ffn). text is a str (tokenized as tokenize(text, bos) does, so BOS
        first by default) or a sequence of token ids. Runs without the GIL."""
        ids = self.tokenize(text, bos=bos) if isinstance(text, (str, bytes)) else self._ids(text)
        a = np.ascontiguousarray(ids, dtype=np.int32)
        out = np.empty((len(a), self.n_layers, self.ffn), dtype=np.float32)
        self._h.call(lib.api_activations, ptr(a), int(a.size), _int(threads, "threads"), ptr(out), out.size)
        return out

    def forward(self, text, clamp=None, scale=None, site="act", positions="all", bos=None, threads=0):
        """The next-token logits after every token (float32, tokens × vocabulary),
        with neurons clamped or scaled as in generate(); positions="generated"
        hooks the last token only (as probe does). text: a str (tokenized as
        tokenize(text, bos) does) or token ids. softmax(forward(p)[-1])[t] is
        probe's P(t) for a one-token target. Runs without the GIL."""
        ids = self.tokenize(text, bos=bos) if isinstance(text, (str, bytes)) else self._ids(text)
        a = np.ascontiguousarray(ids, dtype=np.int32)
        clamps, scales = _hook_specs(clamp), _hook_specs(scale)
        out = np.empty((len(a), max(self.vocab_size, 0)), dtype=np.float32)
        self._h.call(lib.api_forward_logits, ptr(a), int(a.size), _c_strings(clamps), len(clamps),
             _c_strings(scales), len(scales), cstr(site), cstr(positions), _int(threads, "threads"), ptr(out), out.size)
        return out

    def generate(self, prompt="", n=128, clamp=None, scale=None, site="act", positions="all", seed=0,
                 temperature=1.0, top_p=0.9, chat=False, system=None, threads=0):
        """Text from the model: `generate MODEL -p PROMPT --compare --format json`'s
        document, {"prompt_ids", "baseline": {"ids", "text"}[, "clamped", "hooks"]}.
        clamp / scale: {(layer, neuron): value} (or "L:N": value, or a list of
        "L:N=V" strings as --clamp / --scale take them); both runs share the
        seed, so they differ by the hooks alone. The same seed and thread count
        give the same text. Runs without the GIL."""
        clamps, scales = _hook_specs(clamp), _hook_specs(scale)
        out = ctypes.c_void_p()
        self._h.call(lib.api_generate_json, cstr(prompt or ""), int(bool(chat)), cstr(system), _int(n, "n"),
             float(temperature), float(top_p), _int(seed, "seed", 64), _c_strings(clamps),
             len(clamps), _c_strings(scales), len(scales), cstr(site), cstr(positions),
             _int(threads, "threads"), ctypes.byref(out))
        return GenerateResult(_json(out))

    def _ids(self, ids):
        """Token ids as int64 numbers, each checked against the vocabulary."""
        a = np.asarray(ids if not isinstance(ids, (int, np.integer)) else [ids])
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise TypeError("ids must be integers")
        a = a.astype(np.int64).ravel()
        bad = a[(a < 0) | (a >= self.vocab_size)]
        if bad.size:
            raise NeuronIndexError("'%d' is not a token id (0..%d)" % (bad[0], self.vocab_size - 1))
        return a

    # ---- the tokenizer --------------------------------------------------------
    def tokenize(self, text, bos=None, special=False):
        """Text → token ids, as `tokenize MODEL TEXT --format ids` (bos: None as
        the tokenizer does, True/False to force; special: parse <|...|> text)."""
        data = cstr(text)
        ids, n = ctypes.c_void_p(), ctypes.c_int()
        flag = 0 if bos is None else (1 if bos else -1)
        self._h.call(lib.api_tokenize, data, len(data), flag, int(bool(special)), ctypes.byref(ids),
             ctypes.byref(n))
        raw = take_bytes(ids, 4 * n.value)
        return np.frombuffer(raw, dtype=np.int32).tolist()

    def tokens(self, ids):
        """Each token's text as the documents write it ("token": its bytes
        when they are valid UTF-8, else escaped): for the ids of map()."""
        a = np.ascontiguousarray(self._ids(ids), dtype=np.int32)
        out = ctypes.c_void_p()
        self._h.call(lib.api_token_names_json, ptr(a), int(a.size), ctypes.byref(out))
        return _json(out)

    def detokenize(self, ids, special=False, raw=False):
        """Token ids → text, as `tokenize MODEL --decode IDS` (control tokens
        dropped unless special). raw=True gives the bytes (a cut in the middle
        of a character is kept as it is); else a str (invalid bytes replaced)."""
        a = np.ascontiguousarray(self._ids(ids), dtype=np.int32)
        out, n = ctypes.c_void_p(), ctypes.c_size_t()
        self._h.call(lib.api_detokenize, ptr(a), int(a.size), int(bool(special)), ctypes.byref(out),
             ctypes.byref(n))
        b = take_bytes(out, n.value)
        return b if raw else b.decode("utf-8", "replace")


__all__ = ["Model"]
