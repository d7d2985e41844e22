"""neuromap — weight-based interpretability of Llama models, from Python.

A ctypes binding of libneuromap (the library behind the `neuromap` tool):

    import neuromap
    with neuromap.Model("stories260K.bin", tokenizer="tok512.bin") as m:
        m.decode(3, 17)            # == neuromap show MODEL 3:17 --format json
        m.find(" named")           # == neuromap find MODEL " named" --format json
        m.map(layers=0).ids        # (neurons, top_k) int32
        m.logits(3, 17)            # float32, the whole vocabulary

Results are the CLI's JSON documents as plain dicts (printed as tables),
or numpy arrays. Errors raise neuromap.Error (see neuromap.errors).
"""
from .errors import Error, InputError, NeuronIndexError, RunError
from .model import Model
from .atlas import Atlas
from . import _lib

__version__ = "0.1.0"
library_path = _lib.path

__all__ = ["Model", "Atlas", "Error", "InputError", "NeuronIndexError", "RunError", "library_path"]
