"""atlas — neuromap.Atlas: the SQLite neuron map that `neuromap map` writes, read without the model."""
import ctypes
import json

from ._lib import Closable, Handle, call, cstr, lib, take_bytes
from .errors import InputError
from .model import _int, _json
from .results import FindResult, InfoResult, NeuronResult


class Atlas(Closable):
    """An atlas (neuromap map MODEL -o ATLAS). .info says what it was made
    from and with; .neuron() and .find() equal `show ATLAS` and `find ATLAS`
    with --format json; .records() walks every stored neuron."""

    def __init__(self, path):
        self._h = None
        self.path = str(path)
        if not lib.atlas_is_atlas(cstr(self.path)):
            raise InputError("%s: not an atlas (an SQLite file written by 'neuromap map')" % self.path)
        h = ctypes.c_void_p()
        call(lib.atlas_open, ctypes.byref(h), cstr(self.path))
        self._h = Handle(h, lib.atlas_close, "atlas", exclusive=True)
        self.info = InfoResult(_json(lib.api_atlas_info_json(h)))

    def __repr__(self):
        return "neuromap.Atlas(%r: %s, layers %s, norm %s)" % (self.path, self.info["matrices"], self.info["layers"],
                                                               self.info["norm"])

    def neuron(self, layer, neuron, matrix="up", top_k=None, bottom_k=None):
        """`show ATLAS L:N --format json`'s document: every stored token by
        default, or the first top_k / bottom_k of them."""
        top = -1 if top_k is None else _int(top_k, "top_k")
        bottom = -1 if bottom_k is None else _int(bottom_k, "bottom_k")
        if (top_k is not None and top < 0) or (bottom_k is not None and bottom < 0):
            raise InputError("top_k and bottom_k must be >= 0")
        if top > self.info["top_k"] or bottom > self.info["bottom_k"]:
            raise InputError("show: %s holds the top %d and bottom %d tokens of each neuron; use the model for more" %
                             (self.path, self.info["top_k"], self.info["bottom_k"]))
        out = ctypes.c_void_p()
        self._h.call(lib.api_atlas_show_json, cstr(self.path), cstr(matrix), _int(layer, "layer"), _int(neuron, "neuron"),
             top, bottom, ctypes.byref(out))
        return NeuronResult(_json(out))

    def find(self, text, matrix="up", limit=20):
        """`find ATLAS TEXT --format json`'s document (the stored top-k lists searched)."""
        out = ctypes.c_void_p()
        self._h.call(lib.api_atlas_find_json, cstr(self.path), cstr(text), cstr(matrix), _int(limit, "limit"),
             ctypes.byref(out))
        return FindResult(_json(out))

    def records(self):
        """Every stored neuron, in map's order, as `export ATLAS --format jsonl`'s records (dicts)."""
        out = ctypes.c_void_p()
        self._h.call(lib.api_atlas_records_jsonl, ctypes.byref(out))
        for line in take_bytes(out).decode("utf-8").splitlines():
            yield json.loads(line)

    def to_pandas(self):
        """One row per stored token: matrix, layer, neuron, rank (negative: bottom), token_id, token, logit, prob."""
        import pandas as pd
        rows = [(r["matrix"], r["layer"], r["neuron"], t["rank"], t["token_id"], t["token"], t["logit"], t["prob"])
                for r in self.records() for t in r.get("top", []) + r.get("bottom", [])]
        return pd.DataFrame(rows, columns=["matrix", "layer", "neuron", "rank", "token_id", "token", "logit", "prob"])


__all__ = ["Atlas"]
