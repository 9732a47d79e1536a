"""The functions a data pickle may call, as our own stand-ins that check before allocating.

A pickled numpy array is two steps: ``numpy._reconstruct(ndarray, (0,), b'b')`` makes an empty
array, then BUILD hands it its state ``(1, shape, dtype, fortran, bytes)``; a dtype likewise,
``numpy.dtype('u1', False, True)`` then BUILD with its byte order. numpy's own
``_reconstruct`` allocates whatever shape it is asked for -- ``(300000, 3072)`` from a 153-byte
file -- so the pickle never reaches it: :data:`CALLABLE` maps the names a pickle may use to
the stand-ins here, and an array is made (:func:`build`, :func:`_array`) only over bytes that
are in the file: shape x item size must equal the number of bytes given. Protocol 5 writes
``numpy._core.numeric._frombuffer(bytes, dtype, shape, order)`` instead; it gets the same check.

Values from the file appear in messages only through :func:`short_repr`.
"""
import codecs
import math
import re
import reprlib

import numpy as np

MAX_RANK = 4         # dimensions of an array
MAX_STRING_BYTES = 4096   # the size of one element of a string array
SIMPLE_DTYPE = re.compile(r"^(b1|[iu][1248]|f[248]|c(8|16)|[SU][1-9][0-9]{0,3})$")   # numpy's names: 'u1', 'f8', 'U4'


class Refused(Exception):
    """Raised inside the machine; :func:`.unpickle.load_pickle` turns it into a DataError naming the file."""


def _is(value, *options):
    """``value in options``, for options that are ints or strings, and never comparing an array
    (whose ``==`` is element-wise) or a container with them."""
    return type(value) in (int, bool, str, bytes) and value in options


# ------------------------------------------------------------------ short, bounded reprs
class _ShortRepr(reprlib.Repr):
    """reprlib with small limits, and bytes and arrays shown without building their whole repr."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple = 3, 4, 4, 4
        self.maxstring = self.maxother = self.maxlong = 40

    def repr_bytes(self, x, level):
        return repr(x[:self.maxstring]) + ("..." if len(x) > self.maxstring else "")

    repr_bytearray = repr_bytes

    def repr_float(self, x, level):
        return repr(x)

    repr_bool = repr_NoneType = repr_float

    def repr_ndarray(self, x, level):
        return f"array of {x.dtype} with shape {x.shape}"

    def repr_type(self, x, level):                     # numpy.ndarray, not <class 'numpy.ndarray'>
        return f"{x.__module__}.{x.__qualname__}"

    repr_function = repr_type

    def repr_instance(self, x, level):
        return f"<{type(x).__name__}>"


_SHORT = _ShortRepr()


def short_repr(value, limit=60):
    """``repr(value)`` cut to at most ``limit`` characters, without ever building the whole of it."""
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ------------------------------------------------------------------ stand-ins for the functions a pickle may call
class PendingArray:
    """``numpy._reconstruct(ndarray, (0,), b'b')``: an empty array waiting for BUILD to give it
    its shape, dtype and bytes. numpy always writes exactly that call, then the real contents."""
    __slots__ = ("array",)

    def __init__(self):
        self.array = None


class PendingDtype:
    """``numpy.dtype('u1', False, True)``, waiting for BUILD to give it its byte order."""
    __slots__ = ("kind", "size", "order", "built")

    def __init__(self, kind, size):
        self.kind, self.size, self.order, self.built = kind, size, "=", False

    def dtype(self):
        if self.kind == "U":       # numpy's U dtype counts characters, 4 bytes each
            return np.dtype(f"{self.order}U{self.size // 4}")
        return np.dtype(f"{self.order}{self.kind}{self.size}")


def _reconstruct(subtype, shape, dtype):
    if subtype is not np.ndarray or type(shape) is not tuple or len(shape) != 1 or not _is(shape[0], 0) \
            or not _is(dtype, b"b", "b"):
        raise Refused(f"expected numpy's _reconstruct(ndarray, (0,), b'b') (the array's contents follow "
                      f"it), got _reconstruct{short_repr((subtype, shape, dtype))}; refused before allocating")
    return PendingArray()


def _dtype(spec, align=False, copy=True):
    spec = spec.decode("latin-1") if isinstance(spec, bytes) else spec
    if not isinstance(spec, str) or not SIMPLE_DTYPE.match(spec) or not _is(align, 0, 1) or not _is(copy, 0, 1):
        raise Refused(f"expected a number or string dtype ('u1', 'i8', 'f4', 'U4' ...), "
                      f"got numpy.dtype{short_repr((spec, align, copy))}")
    size = int(spec[1:])
    return PendingDtype(spec[0], 4 * size if spec[0] == "U" else size)    # a size in bytes, as BUILD gives it


def _encode(text, encoding="utf-8"):
    """``_codecs.encode(text, 'latin1')``: how Python 3 writes bytes in pickle protocols 0 to 2."""
    if not isinstance(text, str) or not _is(encoding, "latin1", "latin-1"):
        raise Refused(f"expected _codecs.encode(text, 'latin1'), got _codecs.encode{short_repr((text, encoding))}")
    try:
        return codecs.encode(text, "latin-1")
    except UnicodeEncodeError:
        raise Refused("expected bytes as latin-1 text, got characters beyond latin-1") from None


def _empty_bytes():
    """``bytes()``: how Python 3 writes ``b''`` in pickle protocols 0 to 2 (an empty array's contents)."""
    return b""


def _array(shape, dtype, raw, fortran):
    """An array made from ``raw``, the file's own bytes: refused unless they are exactly enough."""
    if not isinstance(dtype, PendingDtype):
        raise Refused(f"expected a numpy dtype, got {short_repr(dtype)}")
    if (not isinstance(shape, tuple) or len(shape) > MAX_RANK
            or not all(type(d) is int and 0 <= d < 2 ** 40 for d in shape)):
        raise Refused(f"expected an array shape of at most {MAX_RANK} sizes 0 to 2**40, got {short_repr(shape)}")
    dtype = dtype.dtype()
    need = math.prod(shape) * dtype.itemsize
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != need:
        got = f"{len(raw)} bytes" if isinstance(raw, (bytes, bytearray)) else short_repr(raw)
        raise Refused(f"expected {need} bytes for an array of {dtype} with shape {shape}, got {got}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _frombuffer(buffer, dtype, shape, order):
    """``numpy._core.numeric._frombuffer``: how numpy writes an array in pickle protocol 5."""
    if not _is(order, "C", "F"):
        raise Refused(f"expected the order 'C' or 'F', got {short_repr(order)}")
    return _array(shape, dtype, buffer, order == "F")


CALLABLE = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,    # numpy 1.x's name
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,   # numpy 2.x's
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
    ("numpy", "ndarray"): np.ndarray,                           # only as _reconstruct's argument
}
CALLS = (_reconstruct, _frombuffer, _dtype, _encode, _empty_bytes)
_BYTE_ORDERS = ("<", ">", "|", "=")


def build(target, state):
    """BUILD: numpy's second step for an array (its contents) and a dtype (its byte order)."""
    if isinstance(target, PendingArray) and target.array is None:
        if not (type(state) is tuple and len(state) == 5 and _is(state[0], 1) and _is(state[3], 0, 1)):
            raise Refused(f"expected an array's state (1, shape, dtype, fortran, bytes), got {short_repr(state)}")
        target.array = _array(state[1], state[2], state[4], state[3] == 1)
    elif isinstance(target, PendingDtype) and not target.built:
        if type(state) is tuple and len(state) == 8 and isinstance(state[1], bytes):     # written by Python 2
            state = state[:1] + (state[1].decode("latin-1"),) + state[2:]
        if not (type(state) is tuple and len(state) == 8 and _is(state[0], 3) and _is(state[1], *_BYTE_ORDERS)
                and all(x is None for x in state[2:5]) and type(state[5]) is int):
            raise Refused(f"expected a plain dtype's state (3, byte order, None, None, None, size, ...), "
                          f"got {short_repr(state)}")
        target.order = state[1]
        if target.kind in "SU":
            if not 0 < state[5] <= MAX_STRING_BYTES or (target.kind == "U" and state[5] % 4):
                raise Refused(f"expected a string dtype of 1 to {MAX_STRING_BYTES} bytes, got {state[5]} bytes")
            target.size = state[5]
        target.built = True
    else:
        raise Refused(f"expected BUILD only on a new numpy array or dtype, got BUILD on {short_repr(target)}")
