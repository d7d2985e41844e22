"""_lib — loads libneuromap.so and declares the C entry points (src/report/api.h).

The library is $NEUROMAP_LIB when set; else the one beside this package
(where `make python` and `pip install` put it) or the repository's
build/opt/ one (a checkout used with PYTHONPATH=python), the newer of the
two when both are there, so a rebuilt library is never shadowed by an old copy. ctypes.CDLL releases the
GIL for the length of every call, so a long map leaves other threads running.
"""
import contextlib
import ctypes
import os
import threading
from ctypes import POINTER, c_char, c_char_p, c_double, c_int, c_int64, c_size_t, c_void_p

from .errors import InputError, raise_error

_HERE = os.path.dirname(os.path.abspath(__file__))
_CANDIDATES = [
    os.path.join(_HERE, "libneuromap.so"),
    os.path.join(_HERE, "..", "..", "build", "opt", "libneuromap.so"),
]


class CError(ctypes.Structure):
    """base/util.h's Error: a code (1 runtime, 2 input) and a one-line message."""
    _fields_ = [("code", c_int), ("msg", c_char * 1024)]


def _load():
    env = os.environ.get("NEUROMAP_LIB")
    paths = [env] if env else sorted((p for p in _CANDIDATES if os.path.exists(p)), key=os.path.getmtime, reverse=True)
    if not paths:
        raise ImportError("neuromap: libneuromap.so not found beside the package nor in build/opt; "
                          "run `make python` in the repository, or set NEUROMAP_LIB")
    return ctypes.CDLL(os.path.abspath(paths[0])), os.path.abspath(paths[0])


lib, path = _load()

_EP = POINTER(CError)
_PROTOS = {
    "api_model_open": (c_int, [POINTER(c_void_p), c_char_p, c_char_p, _EP]),
    "api_model_close": (None, [c_void_p]),
    "api_free": (None, [c_void_p]),
    "api_model_shape": (None, [c_void_p, POINTER(ctypes.c_int32)]),
    "api_info_json": (c_void_p, [c_void_p]),
    "api_show_json": (c_int, [c_void_p, c_char_p, c_int, c_int, c_int, c_int, c_char_p, c_int, POINTER(c_void_p), _EP]),
    "api_logits": (c_int, [c_void_p, c_char_p, c_int, c_int, c_char_p, c_void_p, c_int64, _EP]),
    "api_map": (c_int, [c_void_p, c_char_p, c_int, c_int, c_int, c_int, c_char_p, c_int,
                        c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, c_int64, _EP]),
    "api_token_names_json": (c_int, [c_void_p, c_void_p, c_int, POINTER(c_void_p), _EP]),
    "api_find_json": (c_int, [c_void_p, c_char_p, c_char_p, c_int, c_char_p, c_int, c_int, POINTER(c_void_p), _EP]),
    "api_tokenize": (c_int, [c_void_p, c_char_p, c_size_t, c_int, c_int, POINTER(c_void_p), POINTER(c_int), _EP]),
    "api_detokenize": (c_int, [c_void_p, c_void_p, c_int, c_int, POINTER(c_void_p), POINTER(c_size_t), _EP]),
    "api_activations": (c_int, [c_void_p, c_void_p, c_int, c_int, c_void_p, c_int64, _EP]),
    "api_generate_json": (c_int, [c_void_p, c_char_p, c_int, c_char_p, c_int, c_double, c_double, c_int64,
                                  POINTER(c_char_p), c_int, POINTER(c_char_p), c_int, c_char_p, c_char_p, c_int,
                                  POINTER(c_void_p), _EP]),
    "api_forward_logits": (c_int, [c_void_p, c_void_p, c_int, POINTER(c_char_p), c_int, POINTER(c_char_p), c_int,
                                   c_char_p, c_char_p, c_int, c_void_p, c_int64, _EP]),
    "atlas_is_atlas": (c_int, [c_char_p]),
    "atlas_open": (c_int, [POINTER(c_void_p), c_char_p, _EP]),
    "atlas_close": (None, [c_void_p]),
    "api_atlas_show_json": (c_int, [c_void_p, c_char_p, c_char_p, c_int, c_int, c_int, c_int, POINTER(c_void_p), _EP]),
    "api_atlas_find_json": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_int, POINTER(c_void_p), _EP]),
    "api_atlas_records_jsonl": (c_int, [c_void_p, POINTER(c_void_p), _EP]),
    "api_atlas_info_json": (c_void_p, [c_void_p]),
}
for _name, (_res, _args) in _PROTOS.items():
    _f = getattr(lib, _name)
    _f.restype, _f.argtypes = _res, _args


def call(fn, *args):
    """Calls an api_* function whose last argument is an Error; raises on failure."""
    e = CError()
    if fn(*args, ctypes.byref(e)) != 0:
        raise_error(e.code, e.msg.decode("utf-8", "replace"))


class Handle:
    """A library object (a model, an atlas) that close() frees only once no
    call is using it, so closing never pulls the memory from under a call
    running in another thread. exclusive: one call at a time (an atlas: its
    SQLite statements are the connection's own)."""

    def __init__(self, value, free, what, exclusive=False):
        self.value, self._free, self._what, self._exclusive = value, free, what, exclusive
        self._cv = threading.Condition()
        self._busy = 0

    @contextlib.contextmanager
    def use(self):
        with self._cv:
            while self._exclusive and self._busy:
                self._cv.wait()
            if self.value is None:
                raise InputError("the %s is closed" % self._what)
            self._busy += 1
        try:
            yield self.value
        finally:
            with self._cv:
                self._busy -= 1
                self._cv.notify_all()

    def call(self, fn, *args):
        """call(fn, handle, *args) while holding the handle."""
        with self.use() as h:
            call(fn, h, *args)

    def close(self):
        with self._cv:
            while self._busy:
                self._cv.wait()
            if self.value is not None:
                self._free(self.value)
                self.value = None


class Closable:
    """What Model and Atlas share: close() (waits for calls running in other
    threads, then frees the library object; later calls raise
    neuromap.Error), use as a context manager, and closing when collected."""

    _h = None

    def close(self):
        if self._h is not None:
            self._h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def take_bytes(ptr, n=None):
    """The bytes at a malloc'd pointer the library handed back, then frees it."""
    if not ptr:
        return b""
    try:
        return ctypes.string_at(ptr, n) if n is not None else ctypes.string_at(ptr)
    finally:
        lib.api_free(ptr)


def cstr(s):
    """A str (or bytes) argument as C bytes; None stays NULL."""
    if s is None or isinstance(s, bytes):
        return s
    if not isinstance(s, str):
        raise TypeError("expected a string, not %s" % type(s).__name__)
    return s.encode("utf-8")


def ptr(a):
    """The data pointer of a C-contiguous numpy array (or None)."""
    return None if a is None else a.ctypes.data_as(c_void_p)


__all__ = ["lib", "path", "call", "Handle", "take_bytes", "cstr", "ptr", "CError"]
