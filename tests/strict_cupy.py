"""A strict stand-in for CuPy that runs on the CPU, for the tests only.

Its arrays wrap NumPy arrays and refuse what CuPy refuses, so that the `[strict]` column of
the backend tests proves, on every CI run without a GPU, that minires's device code would run
on CuPy. `tests/conftest.py` installs it as the device ('cuda') module with
`minires.backend._install_device_module(strict_cupy)` for the tests that ask for it, and
puts real CuPy back afterwards; users never see it.

What it enforces (each one has a test in tests/test_strict_cupy.py):
- no implicit conversion to NumPy: `np.asarray(d)`, `np.array(d)` and anything that calls
  `__array__` raise TypeError (CuPy's own message); there is no `__array_interface__`, no
  buffer protocol (`memoryview(d)`), no `.ctypes`; `cupy.asnumpy(d)` / `d.get()` are the only
  way back. `float(d)`, `int(d)`, `bool(d)`, `d.item()` work on one-element arrays, as in CuPy
  (an implicit synchronisation);
- no NumPy array as an operand: `d + h`, `h * d`, `xp.matmul(d, h)`, `d[...] = h`, `d[h_idx]`
  with a `numpy.ndarray` h raise TypeError; Python and NumPy scalars are fine. (Assignment
  from and indexing with host arrays are refused even where a CuPy version would copy them
  over silently: either is a hidden host-to-device transfer on every call.)
- only what CuPy provides: the module-level names below (anything else is an AttributeError
  naming it), the ndarray methods and attributes below, `lib.stride_tricks.as_strided`
  (without NumPy's `writeable=`), `ufunc.at` only for add/maximum/minimum and no
  `ufunc.reduce/accumulate/reduceat` (ufunc.rst; recent CuPy releases add some: conservative),
  `cupyx.scatter_add`;
- a NumPy function called on a device array is dispatched the way CuPy dispatches it
  (NEP 13 / NEP 18, `__array_ufunc__` / `__array_function__`): to the function of the same
  name if CuPy has one, a TypeError if it has not;
- `isinstance(d, numpy.ndarray)` is False; reductions and integer indexing give 0-d arrays,
  never NumPy scalars (CuPy's "Reduction methods return zero-dimensional array");
- `cupy.asarray(h)` copies host memory (a device array never aliases a NumPy array).

Where the lists come from (CuPy's source and API reference, github.com/cupy/cupy):
- module functions and constants: the routines CuPy 13's `cupy/__init__.py` imports (the
  NumPy-2 era file, with `cupy.shape`, `cupy.savetxt` and the NumPy 2.0 shims; CuPy 8's
  list, cupy/__init__.py at commit 0079eb9b, is a subset of it);
- ufuncs and `ufunc.at` (add, maximum, minimum only): docs/source/reference/ufunc.rst;
- `cupy.lib.stride_tricks.as_strided(x, shape=None, strides=None)`: docs/source/reference/lib.rst;
- `cupyx.scatter_add/scatter_max/scatter_min`: docs/source/reference/ext.rst;
- no implicit conversion, `asnumpy`/`get` the only way back: docs/source/reference/ndarray.rst;
- ndarray methods and attributes, `flags` with only c_contiguous/f_contiguous/owndata, no
  `__array_interface__`: cupy/_core/core.pyx (class ndarray).
"""
import builtins
import types

import numpy as _np

_CONVERSION_ERROR = ("Implicit conversion to a NumPy array is not allowed. "
                     "Please use `.get()` to construct a NumPy array explicitly.")  # CuPy's message


def _host_operand_error(where):
    return TypeError(f"strict_cupy: a numpy.ndarray was given as {where} of a device operation; CuPy "
                     f"refuses host arrays (move it first: cupy.asarray(h) / minires.backend.to_device(h, 'cuda'))")


# ---------------------------------------------------------------------------------------------
# unwrapping arguments, wrapping results
# ---------------------------------------------------------------------------------------------
def _unwrap(x, where="an operand"):
    """The NumPy array inside a device array; a NumPy array here is an error; sequences recursed."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        raise _host_operand_error(where)
    if type(x) in (list, tuple):
        return type(x)(_unwrap(v, where) for v in x)
    return x


def _wrap(r):
    """Device arrays for NumPy results; NumPy scalars become 0-d device arrays, as in CuPy."""
    if isinstance(r, _np.ndarray):
        return _new(r)
    if isinstance(r, _np.generic):
        return _new(_np.asarray(r))
    if type(r) in (list, tuple):
        return type(r)(_wrap(v) for v in r)
    return r


def _new(a):
    if a.dtype.kind in "OSUV":   # CuPy has numeric and bool arrays only
        raise TypeError(f"strict_cupy: CuPy has no arrays of dtype {a.dtype} (numbers and booleans only)")
    d = object.__new__(ndarray)
    d._a = a
    return d


def _call(func, args, kwargs, where):
    out = kwargs.get("out")
    args = _unwrap(args, f"an argument of {where}")
    kwargs = {k: _unwrap(v, f"the '{k}' argument of {where}") for k, v in kwargs.items()}
    result = func(*args, **kwargs)
    return out if out is not None else _wrap(result)


def _device_function(name, func):
    def f(*args, **kwargs):
        return _call(func, args, kwargs, f"cupy.{name}")
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"strict_cupy.{name}: numpy.{name} on the wrapped arrays; refuses NumPy array operands."
    return f


# ---------------------------------------------------------------------------------------------
# the array
# ---------------------------------------------------------------------------------------------
class _Flags:
    """CuPy's flags: only c_contiguous, f_contiguous and owndata (core.pyx); read-only."""

    def __init__(self, a):
        self.c_contiguous = bool(a.flags.c_contiguous)
        self.f_contiguous = bool(a.flags.f_contiguous)
        self.owndata = bool(a.flags.owndata)

    def __getitem__(self, key):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[key]


def _binary(name, reflected=False, inplace=False):
    op = getattr(_np.ndarray, name)

    def method(self, other):
        o = _unwrap(other, "an operand")
        if inplace:
            op(self._a, o)
            return self
        return _wrap(op(self._a, o))
    method.__name__ = name
    return method


def _unary(name):
    op = getattr(_np.ndarray, name)

    def method(self):
        return _wrap(op(self._a))
    method.__name__ = name
    return method


def _method(name):
    def method(self, *args, **kwargs):
        return _call(getattr(self._a, name), args, kwargs, f"ndarray.{name}")
    method.__name__ = name
    return method


def _one_element(a, what):
    if a.size != 1:
        raise TypeError(f"only size-1 arrays can be converted to Python scalars ({what})")
    return a.reshape(()).item()


class ndarray:
    """A device array: a NumPy array inside, CuPy's interface outside (see the module docstring)."""

    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("strict_cupy.ndarray: memptr/strides are not emulated")
        self._a = _np.empty(shape, dtype, order=order)

    # ----- the only ways back to the host
    def get(self, stream=None, order="C", out=None):
        if out is not None:
            if not isinstance(out, _np.ndarray):
                raise TypeError("ndarray.get(out=...) takes a numpy.ndarray")
            out[...] = self._a
            return out
        return _np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, _np.ndarray):
            raise TypeError(f"ndarray.set takes a numpy.ndarray, got {type(arr).__name__}")
        if arr.dtype != self._a.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self._a.dtype} array")
        if arr.shape != self._a.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self._a.shape}, new shape: {arr.shape}")
        self._a[...] = arr

    # ----- what CuPy refuses
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_CONVERSION_ERROR)

    __array_ufunc__ = None   # replaced below, once the ufuncs exist

    def __array_function__(self, func, types_, args, kwargs):
        name = func.__name__
        mod = getattr(func, "__module__", "") or ""
        target = None
        if mod in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray") or mod.startswith("numpy._core"):
            target = _FUNCTIONS.get(name)
        elif mod == "numpy.linalg":
            target = getattr(linalg, name, None)
        if target is None:
            raise TypeError(f"strict_cupy: numpy.{name} was called with a device array and CuPy has no "
                            f"cupy.{name} to dispatch it to; call the array module's own function "
                            f"(xp = minires.backend.xp_of(x)) or move the data with cupy.asnumpy")
        return target(*args, **kwargs)

    def __reduce__(self):
        return (_from_host_copy, (self._a,))

    # ----- attributes (core.pyx)
    shape = property(lambda self: self._a.shape)
    strides = property(lambda self: self._a.strides)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    dtype = property(lambda self: self._a.dtype)
    flags = property(lambda self: _Flags(self._a))
    T = property(lambda self: _new(self._a.T))
    real = property(lambda self: _new(self._a.real))
    imag = property(lambda self: _new(self._a.imag))
    base = property(lambda self: None if self._a.base is None else _new(self._a.base))
    device = property(lambda self: _Device(0))

    @shape.setter
    def shape(self, value):
        self._a.shape = value

    # ----- conversions that CuPy allows (one element: an implicit synchronisation)
    def __float__(self):
        return float(_one_element(self._a, "float()"))

    def __int__(self):
        return int(_one_element(self._a, "int()"))

    def __complex__(self):
        return complex(_one_element(self._a, "complex()"))

    def __bool__(self):
        return bool(self._a)

    def __format__(self, spec):   # CuPy: format(self.get(), format_spec)
        return format(self._a, spec)

    def item(self):
        if self._a.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def tobytes(self, order="C"):
        return self._a.tobytes(order)

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __copy__(self):
        return _new(self._a.copy())

    def __deepcopy__(self, memo):
        return _new(self._a.copy())

    # ----- indexing: device arrays, ints, slices, None, Ellipsis, lists; no NumPy arrays
    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key, "an index")])

    def __setitem__(self, key, value):
        self._a[_unwrap(key, "an index")] = _unwrap(value, "the value assigned")

    # ----- methods (core.pyx's list; ctypes, resize, byteswap, itemset, tofile... are absent)
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        return _new(self._a.astype(dtype, order=order, copy=copy))

    def copy(self, order="C"):
        return _new(self._a.copy(order=order))

    def view(self, dtype=None):
        return _new(self._a.view() if dtype is None else self._a.view(dtype))

    def fill(self, value):
        self._a.fill(_unwrap(value, "the fill value"))

    def __dlpack__(self, stream=None):
        raise NotImplementedError("strict_cupy: DLPack is not emulated")


for _name in ("reshape", "transpose", "swapaxes", "flatten", "ravel", "squeeze", "take", "put",
              "repeat", "choose", "sort", "argsort", "partition", "argpartition", "searchsorted",
              "nonzero", "compress", "diagonal", "max", "argmax", "min", "argmin", "clip", "round",
              "trace", "sum", "cumsum", "mean", "var", "std", "prod", "cumprod", "all", "any", "dot",
              "conj", "conjugate"):
    setattr(ndarray, _name, _method(_name))
ndarray.ptp = lambda self, *a, **k: _call(_np.ptp, (self,) + a, k, "ndarray.ptp")
for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
              "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__",
              "__rpow__", "__matmul__", "__rmatmul__", "__and__", "__rand__", "__or__", "__ror__",
              "__xor__", "__rxor__", "__lshift__", "__rlshift__", "__rshift__", "__rrshift__",
              "__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__", "__divmod__"):
    setattr(ndarray, _name, _binary(_name))
for _name in ("__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__",
              "__ipow__", "__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__"):
    setattr(ndarray, _name, _binary(_name, inplace=True))
for _name in ("__neg__", "__pos__", "__abs__", "__invert__"):
    setattr(ndarray, _name, _unary(_name))


def _from_host_copy(a):
    return _new(_np.array(a, copy=True))


class _Device:
    def __init__(self, id=0):
        self.id = id

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


# ---------------------------------------------------------------------------------------------
# ufuncs (docs/source/reference/ufunc.rst)
# ---------------------------------------------------------------------------------------------
_UFUNCS = """add subtract multiply matmul divide logaddexp logaddexp2 true_divide floor_divide negative
positive power float_power remainder mod fmod divmod absolute fabs rint sign heaviside conj conjugate
exp exp2 log log2 log10 expm1 log1p sqrt square cbrt reciprocal gcd lcm sin cos tan arcsin arccos
arctan arctan2 hypot sinh cosh tanh arcsinh arccosh arctanh degrees radians deg2rad rad2deg
bitwise_and bitwise_or bitwise_xor invert left_shift right_shift greater greater_equal less
less_equal not_equal equal logical_and logical_or logical_xor logical_not maximum minimum fmax fmin
isfinite isinf isnan signbit copysign nextafter modf ldexp frexp floor ceil trunc""".split()
_UFUNC_AT = ("add", "maximum", "minimum")   # "ufunc.at: add, maximum, minimum" (ufunc.rst)


class ufunc:
    """A CuPy ufunc: call and outer for all; at only for add, maximum, minimum; no reduce/accumulate."""

    def __init__(self, name):
        self.__name__ = name
        self._np = getattr(_np, name)
        self.nin, self.nout = self._np.nin, self._np.nout

    def __call__(self, *args, **kwargs):
        return _call(self._np, args, kwargs, f"cupy.{self.__name__}")

    def outer(self, a, b, **kwargs):
        return _call(self._np.outer, (a, b), kwargs, f"cupy.{self.__name__}.outer")

    def at(self, a, indices, b=None):
        if self.__name__ not in _UFUNC_AT:
            raise NotImplementedError(f"cupy.{self.__name__}.at is not provided by CuPy "
                                      f"(ufunc.at exists for {', '.join(_UFUNC_AT)} only)")
        args = (a, indices) if b is None else (a, indices, b)
        _call(self._np.at, args, {}, f"cupy.{self.__name__}.at")

    def __getattr__(self, name):
        if name in ("reduce", "accumulate", "reduceat"):
            raise AttributeError(f"cupy.{self.__name__}.{name} is not implemented in CuPy (ufunc.rst)")
        raise AttributeError(name)

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"


_UFUNC_OBJECTS = {name: ufunc(name) for name in _UFUNCS}


def _array_ufunc(self, np_ufunc, method, *inputs, **kwargs):
    """NEP 13, as CuPy does it: numpy.exp(d) runs cupy.exp; a ufunc CuPy lacks, or a
    NumPy array among the operands, is a TypeError."""
    target = _UFUNC_OBJECTS.get(np_ufunc.__name__)
    if target is None:
        raise TypeError(f"strict_cupy: numpy.{np_ufunc.__name__} has no CuPy twin")
    if method == "__call__":
        return target(*inputs, **kwargs)
    if method == "at":
        return target.at(*inputs)
    if method == "outer":
        return target.outer(*inputs, **kwargs)
    raise TypeError(f"strict_cupy: numpy.{np_ufunc.__name__}.{method} on a device array: "
                    f"CuPy does not implement ufunc.{method}")


ndarray.__array_ufunc__ = _array_ufunc


# ---------------------------------------------------------------------------------------------
# module-level names: the routines imported by CuPy 13's cupy/__init__.py (github.com/cupy/cupy,
# the NumPy-2 era file: it imports cupy._manipulation.shape.shape, cupy._io.text.savetxt ...)
# ---------------------------------------------------------------------------------------------
_FUNCTION_NAMES = """
empty_like eye full_like identity ones_like zeros_like copy ascontiguousarray fromfile fromfunction
fromiter frombuffer fromstring loadtxt genfromtxt arange linspace logspace meshgrid diag diagflat tri
tril triu vander piecewise apply_along_axis put_along_axis
copyto shape ravel reshape moveaxis rollaxis swapaxes transpose atleast_1d atleast_2d atleast_3d
broadcast_arrays broadcast_to expand_dims squeeze column_stack concatenate dstack hstack stack vstack
row_stack asarray_chkfinite asfortranarray require array_split dsplit hsplit split vsplit repeat
tile delete append resize unique trim_zeros flip fliplr flipud roll rot90 broadcast_shapes
bitwise_not packbits unpackbits binary_repr common_type min_scalar_type promote_types finfo iinfo
issubdtype mintypecode typename
indices ix_ mask_indices tril_indices tril_indices_from triu_indices triu_indices_from
ravel_multi_index unravel_index choose compress diagonal extract select take take_along_axis place
put putmask fill_diagonal diag_indices diag_indices_from ndindex
load save savez savez_compressed array_repr array_str array2string format_float_positional
format_float_scientific savetxt base_repr get_printoptions set_printoptions printoptions
einsum cross dot inner kron outer tensordot vdot trace
allclose array_equal array_equiv isclose isneginf isposinf iscomplex iscomplexobj isfortran isreal
isrealobj in1d intersect1d isin setdiff1d setxor1d union1d isscalar all any
poly polyadd polysub polymul polyfit polyval roots
unwrap around fix round prod sum cumprod cumsum ediff1d nancumprod nancumsum nansum nanprod diff
gradient trapz bartlett blackman hamming hanning kaiser i0 sinc angle imag real clip interp
nan_to_num real_if_close convolve may_share_memory shares_memory iterable pad
count_nonzero argmax argmin argwhere flatnonzero nanargmax nanargmin nonzero searchsorted where
argpartition argsort lexsort sort_complex partition sort corrcoef cov correlate amax amin nanmax
nanmin percentile ptp quantile median average mean std var nanmedian nanmean nanstd nanvar bincount
digitize histogram histogram2d histogramdd size ndim
""".split()
_FROM_NUMPY = """e euler_gamma inf nan newaxis pi complexfloating floating generic inexact integer
number signedinteger unsignedinteger bool_ byte short intc int_ longlong intp int8 int16 int32 int64
ubyte ushort uintc uint ulonglong uintp uint8 uint16 uint32 uint64 half single double float16
float32 float64 csingle cdouble complex64 complex128 dtype index_exp s_""".split()

_FUNCTIONS = {name: _device_function(name, getattr(_np, name)) for name in _FUNCTION_NAMES
              if hasattr(_np, name)}
_FUNCTIONS.update(_UFUNC_OBJECTS)
_FUNCTIONS.update(abs=_UFUNC_OBJECTS["absolute"], max=_FUNCTIONS["amax"], min=_FUNCTIONS["amin"],
                  round_=_FUNCTIONS["round"], product=_FUNCTIONS["prod"], cumproduct=_FUNCTIONS["cumprod"],
                  alltrue=_FUNCTIONS["all"], sometrue=_FUNCTIONS["any"],
                  msort=_device_function("msort", lambda a: _np.sort(a, axis=0)))
if "in1d" not in _FUNCTIONS:
    _FUNCTIONS["in1d"] = _device_function("in1d", lambda a, b, **k: _np.isin(a, b, **k).ravel())
if "row_stack" not in _FUNCTIONS:
    _FUNCTIONS["row_stack"] = _FUNCTIONS["vstack"]

globals().update(_FUNCTIONS)
globals().update({name: getattr(_np, name) for name in _FROM_NUMPY if hasattr(_np, name)})


def _host_value(a, dtype):
    """What cupy.array/asarray accept: device arrays, NumPy arrays, scalars, nested sequences."""
    if isinstance(a, ndarray):
        return a._a
    if type(a) in (list, tuple):
        return _np.array([_host_value(v, None) for v in a], dtype=dtype)
    return a


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0):
    """Host or device data -> a new device array (a copy: host memory is never aliased)."""
    return _new(_np.array(_host_value(obj, dtype), dtype=dtype, copy=True, order=order, ndmin=ndmin))


def asarray(a, dtype=None, order=None):
    """A device array; no copy if ``a`` is one already with that dtype (host data is always copied)."""
    if isinstance(a, ndarray):
        return a if dtype is None or _np.dtype(dtype) == a.dtype else a.astype(dtype)
    return _new(_np.array(_host_value(a, dtype), dtype=dtype, copy=True, order=order or "K"))


asanyarray = asarray


def _creation(name):
    np_func = getattr(_np, name)

    def f(*args, **kwargs):
        return _new(np_func(*args, **kwargs))
    f.__name__ = name
    return f


empty, zeros, ones, full = (_creation(n) for n in ("empty", "zeros", "ones", "full"))
_FUNCTIONS.update(array=array, asarray=asarray, asanyarray=asanyarray, empty=empty, zeros=zeros,
                  ones=ones, full=full)


def asnumpy(a, stream=None, order="C", out=None):
    """The only way back to the host (with ndarray.get)."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    import sys
    return sys.modules[__name__] if builtins.any(isinstance(a, ndarray) for a in args) else _np


def is_available():
    return True


def result_type(*arrays_and_dtypes):
    return _np.result_type(*(a.dtype if isinstance(a, ndarray) else a for a in arrays_and_dtypes))


def can_cast(from_, to, casting="safe"):
    return _np.can_cast(from_.dtype if isinstance(from_, ndarray) else from_, to, casting=casting)


# ----- submodules
linalg = types.SimpleNamespace(**{n: _device_function(f"linalg.{n}", getattr(_np.linalg, n))
                                  for n in ("norm", "det", "inv", "solve", "svd", "qr", "cholesky",
                                            "eigh", "eigvalsh", "matrix_power", "pinv", "slogdet",
                                            "lstsq", "tensorinv", "tensorsolve", "matrix_rank")})


def _as_strided(x, shape=None, strides=None):
    """cupy.lib.stride_tricks.as_strided(x, shape=None, strides=None): a view; no ``writeable``."""
    if not isinstance(x, ndarray):
        raise TypeError(f"cupy.lib.stride_tricks.as_strided takes a cupy.ndarray, got {type(x).__name__}")
    return _new(_np.lib.stride_tricks.as_strided(x._a, shape=shape, strides=strides))


lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=_as_strided))


def _scatter(np_ufunc):
    def f(a, slices, value):
        if not isinstance(a, ndarray):
            raise TypeError("cupyx.scatter_*: the target must be a cupy.ndarray")
        np_ufunc.at(a._a, _unwrap(slices, "an index"), _unwrap(value, "the value"))
    return f


cupyx = types.SimpleNamespace(scatter_add=_scatter(_np.add), scatter_max=_scatter(_np.maximum),
                              scatter_min=_scatter(_np.minimum))


class _Stream:
    def synchronize(self):
        pass


class _MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


cuda = types.SimpleNamespace(
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
    Device=_Device, Stream=types.SimpleNamespace(null=_Stream()), is_available=lambda: True,
    get_device_id=lambda: 0, get_current_stream=lambda: _Stream())

__version__ = "0.0-strict"


def __getattr__(name):
    """A name CuPy does not provide: an AttributeError that says so (module __getattr__, PEP 562)."""
    raise AttributeError(f"strict_cupy: module 'cupy' has no attribute {name!r} (not in CuPy's API "
                         f"as listed in tests/strict_cupy.py; NumPy-only, or its CuPy twin lives elsewhere)")
