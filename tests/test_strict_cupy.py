"""The stand-in is strict: each pattern that breaks NumPy code on CuPy, written as a small
function, must raise under tests/strict_cupy.py (a stand-in that let them pass would prove
nothing), and what CuPy allows must keep working."""
import ctypes
import pickle

import numpy as np
import pytest

import strict_cupy as cp
from minires import backend


def d(*shape):
    return cp.asarray(np.arange(float(np.prod(shape) or 1)).reshape(shape))


# ------------------------------------------------------------------ implicit conversion to NumPy
def np_asarray():
    np.asarray(d(3))


def np_array():
    np.array(d(3))


def np_array_of_device_values():
    np.array([d(), d()])          # a NumPy array built from device values


def array_interface():
    d(3).__array_interface__


def buffer_protocol():
    memoryview(d(3))


def ctypes_pointer():
    d(3).ctypes.data_as(ctypes.c_void_p)


def float_of_many():
    float(d(3))


def numpy_as_strided_on_device():
    np.lib.stride_tricks.as_strided(d(4), shape=(2, 2), strides=(16, 8))


def numpy_setitem_from_device():
    h = np.zeros(3)
    h[...] = d(3)


# ------------------------------------------------------------------ NumPy arrays as operands
def host_operand_right():
    d(3) + np.ones(3)


def host_operand_left():
    np.ones(3) * d(3)


def host_operand_in_function():
    cp.matmul(d(2, 2), np.eye(2))


def host_operand_out():
    cp.multiply(d(3), 2.0, out=np.empty(3))


def host_value_assigned():
    x = d(3)
    x[...] = np.ones(3)


def host_index_array():
    d(3)[np.array([0, 2])]


def host_in_concatenate():
    cp.concatenate([d(2), np.ones(2)])


def numpy_ufunc_with_host_operand():
    np.add(d(3), np.ones(3))


# ------------------------------------------------------------------ only what CuPy provides
def numpy_only_function_on_module():
    cp.nditer(d(3))                         # NumPy's iterator object: no CuPy twin


def numpy_only_function_dispatched():
    np.nanquantile(d(3), 0.5)               # NEP 18 finds no cupy.nanquantile


def ufunc_at_cupy_lacks():
    cp.multiply.at(d(3), cp.asarray([0, 1]), 2.0)   # ufunc.at: add, maximum, minimum only


def numpy_ufunc_at_cupy_lacks():
    np.subtract.at(d(3), cp.asarray([0, 1]), 1.0)


def ufunc_reduce():
    cp.add.reduce(d(3))


def as_strided_at_the_top_level():
    cp.as_strided(d(4), (2, 2), (16, 8))   # CuPy: cupy.lib.stride_tricks.as_strided


def as_strided_writeable_keyword():
    cp.lib.stride_tricks.as_strided(d(4), shape=(2, 2), strides=(16, 8), writeable=False)


def flags_writeable():
    d(3).flags.writeable


def ndarray_method_cupy_lacks():
    d(3).resize((4,))


def object_array():
    cp.asarray(np.array(["a", "b"]))


def isinstance_numpy():
    assert isinstance(d(3), np.ndarray), "a cupy.ndarray is not a numpy.ndarray"


IMPLICIT = "Implicit conversion to a NumPy array is not allowed"
HOST = "a numpy.ndarray was given as"
MISSING = "has no attribute"
FORBIDDEN = [  # (pattern, what the error must say: the stand-in refused it for the right reason)
    (np_asarray, IMPLICIT), (np_array, IMPLICIT), (np_array_of_device_values, IMPLICIT),
    (array_interface, MISSING), (buffer_protocol, "bytes-like object is required"),
    (ctypes_pointer, MISSING), (float_of_many, "only size-1 arrays"),
    (numpy_as_strided_on_device, IMPLICIT), (numpy_setitem_from_device, IMPLICIT),
    (host_operand_right, HOST), (host_operand_left, HOST), (host_operand_in_function, HOST),
    (host_operand_out, HOST), (host_value_assigned, HOST), (host_index_array, HOST),
    (host_in_concatenate, HOST), (numpy_ufunc_with_host_operand, HOST),
    (numpy_only_function_on_module, "no attribute 'nditer'"),
    (numpy_only_function_dispatched, "no cupy.nanquantile"),
    (ufunc_at_cupy_lacks, "multiply.at is not provided"), (numpy_ufunc_at_cupy_lacks, "subtract.at is not provided"),
    (ufunc_reduce, "reduce is not implemented"), (as_strided_at_the_top_level, "no attribute 'as_strided'"),
    (as_strided_writeable_keyword, "writeable"), (flags_writeable, "writeable"),
    (ndarray_method_cupy_lacks, "resize"), (object_array, "no arrays of dtype"),
    (isinstance_numpy, "not a numpy.ndarray")]


@pytest.mark.parametrize("pattern, message", FORBIDDEN, ids=[f.__name__ for f, _ in FORBIDDEN])
def test_forbidden_pattern_raises(pattern, message):
    with pytest.raises((TypeError, AttributeError, NotImplementedError, AssertionError), match=message):
        pattern()


# ------------------------------------------------------------------ what CuPy allows keeps working
def test_what_cupy_allows():
    x = d(2, 3)
    h = cp.asnumpy(x)
    assert type(h) is np.ndarray and np.array_equal(h, np.arange(6.0).reshape(2, 3))
    assert np.array_equal(x.get(), h) and x.get() is not x.get()
    assert isinstance(x.sum(), cp.ndarray) and x.sum().shape == ()      # 0-d, not a NumPy scalar
    assert isinstance(x[0, 1], cp.ndarray) and float(x[0, 1]) == 1.0 and int(x.max()) == 5
    assert bool(x[1, 2] > 4) and x.max().item() == 5.0 and f"{x.mean():.2f}" == "2.50"
    y = 2 * x + np.float32(1) * x - x / 2.0                            # Python and NumPy scalars
    assert isinstance(y, cp.ndarray) and np.allclose(cp.asnumpy(y), 2.5 * h)
    assert isinstance(np.exp(x), cp.ndarray)                            # NEP 13: cupy.exp
    assert isinstance(np.concatenate([x, x]), cp.ndarray)               # NEP 18: cupy.concatenate
    z = cp.zeros(4)
    cp.add.at(z, cp.asarray([0, 0, 3]), 1.0)                            # ufunc.at for add
    cp.cupyx.scatter_add(z, cp.asarray([1]), 5.0)
    assert z.tolist() == [2.0, 5.0, 0.0, 1.0]
    v = cp.lib.stride_tricks.as_strided(d(4), shape=(3, 2), strides=(8, 8))
    assert v.tolist() == [[0, 1], [1, 2], [2, 3]]
    host = np.ones(3)
    dev = cp.asarray(host)
    dev += 1                                                            # a device copy: host untouched
    assert host.tolist() == [1, 1, 1] and cp.asarray(dev) is dev
    assert pickle.loads(pickle.dumps(dev)).tolist() == [2, 2, 2]
    assert not isinstance(dev, np.ndarray) and x.flags.c_contiguous and x.T.flags.f_contiguous


def test_backend_treats_the_stand_in_as_the_device_module():
    previous = backend._install_device_module(cp)
    try:
        a = np.arange(3.0)
        g = backend.to_device(a, "cuda")
        assert isinstance(g, cp.ndarray) and backend.xp_of(g) is cp and backend.device_of(g) == "cuda"
        assert backend.gpu_available() and backend.check_device("cuda") == "cuda"
        back = backend.to_numpy(g)
        assert type(back) is np.ndarray and np.array_equal(back, a)
        with pytest.raises(backend.DeviceError, match="different devices"):
            backend.xp_of(a, g)
        v = backend.as_strided(g, (2, 2), (8, 8))
        assert isinstance(v, cp.ndarray) and v.tolist() == [[0, 1], [1, 2]]
    finally:
        backend._install_device_module(previous)
    assert backend._cupy is previous
