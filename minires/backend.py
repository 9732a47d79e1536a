"""The array-module switch: the same layer code runs on NumPy (CPU) and CuPy (GPU).

Every op asks its inputs which module they belong to (``xp = xp_of(x)``) and then
calls ``xp.matmul``, ``xp.zeros`` ... exactly as it would call NumPy. The handful
of things that differ between the two libraries are decided here, in one place.

    >>> import numpy as np
    >>> xp_of(np.zeros(3)) is np
    True
"""
import numpy as np

try:  # CuPy is an optional extra: `pip install minires[gpu]`
    import cupy as _cupy
except Exception:  # ImportError, or a CuPy that cannot find its CUDA libraries
    _cupy = None
_real_cupy = _cupy

DEVICES = ("cpu", "cuda")


def _install_device_module(module):
    """Tests only: make ``module`` the 'cuda' array module in place of CuPy; ``None`` puts real
    CuPy (or its absence) back. Returns the module that was installed before.

    tests/conftest.py installs ``tests/strict_cupy.py`` (a CPU stand-in that refuses what CuPy
    refuses) for the ``[strict]`` column of the backend tests; nothing in minires calls this,
    so users always get real CuPy.
    """
    global _cupy
    previous, _cupy = _cupy, (_real_cupy if module is None else module)
    return previous


def _is_cupy(a):
    return _cupy is not None and isinstance(a, _cupy.ndarray)


def xp_of(*arrays):
    """The array module (numpy or cupy) of the given arrays; numpy if none is a CuPy array.

    Mixing NumPy and CuPy arrays in one call is an error, not a silent copy.
    """
    kinds = {_cupy is not None and isinstance(a, _cupy.ndarray) for a in arrays if hasattr(a, "shape")}
    if len(kinds) > 1:
        raise DeviceError("arrays live on different devices (some NumPy/cpu, some CuPy/cuda); "
                          "move them together with minires.backend.to_device(a, 'cpu' or 'cuda')")
    return _cupy if kinds == {True} else np


def as_strided(a, shape, strides):
    """A view of ``a`` with the given shape and strides (in bytes), on NumPy or CuPy; no copy.

    The view reads memory in place, so out-of-bounds strides read garbage: callers
    derive shape and strides from ``a.strides`` and the array's own sizes.
    """
    if _is_cupy(a):
        return _cupy.lib.stride_tricks.as_strided(a, shape=shape, strides=strides)
    return np.lib.stride_tricks.as_strided(a, shape=shape, strides=strides, writeable=False)


def device_of(a):
    """'cuda' for a CuPy array, 'cpu' for anything else."""
    return "cuda" if _is_cupy(a) else "cpu"


def gpu_available():
    """True when CuPy imports and at least one CUDA device answers. Never raises."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def check_device(device):
    """Validate a device name and return it ('cpu' or 'cuda')."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cuda" and not gpu_available():
        raise DeviceError("device 'cuda' asked for, but no GPU is available "
                          "(install CuPy with `pip install minires[gpu]` on a machine with an NVIDIA GPU)")
    return device


def to_device(a, device):
    """Copy ``a`` to ``device`` ('cpu' -> numpy.ndarray, 'cuda' -> cupy.ndarray); no copy if already there."""
    check_device(device)
    if device == "cpu":
        return to_numpy(a)
    return _cupy.asarray(a)


def to_numpy(a):
    """A NumPy array holding the values of ``a`` (copied off the GPU if it lives there)."""
    if _is_cupy(a):
        return _cupy.asnumpy(a)
    return np.asarray(a)


class DeviceError(RuntimeError):
    """An array is on the wrong device (NumPy where CuPy was expected, or the reverse)."""
