"""The array-module switch: the same layer code runs on NumPy (CPU) and CuPy (GPU).

Every op asks its inputs which module they belong to (``xp = xp_of(x)``) and then
calls ``xp.matmul``, ``xp.zeros`` ... exactly as it would call NumPy. The handful
of things that differ between the two libraries are decided here, in one place.

    >>> import numpy as np
    >>> xp_of(np.zeros(3)) is np
    True
"""
import numpy as np

# CuPy is an optional extra. Its binary wheels are named after the CUDA major version; the
# package called plain `cupy` is the source distribution, which needs a CUDA toolkit to build.
INSTALL_CUPY = ("pip install cupy-cuda12x (CUDA 12; from a minires checkout: pip install \".[gpu]\") "
                "or pip install cupy-cuda13x (CUDA 13: \".[gpu-cuda13]\")")

_cupy_error = None  # why CuPy did not load: None (loaded), or a one-line reason
try:
    import cupy as _cupy
except ModuleNotFoundError as e:
    _cupy = None
    if e.name == "cupy":
        _cupy_error = "CuPy is not installed"
    else:  # CuPy is there, one of its own imports is not
        _cupy_error = f"CuPy is installed but does not load ({type(e).__name__}: {e})"
except Exception as e:  # ImportError from CuPy itself, e.g. its CUDA libraries are missing
    _cupy = None
    _cupy_error = f"CuPy is installed but does not load ({type(e).__name__}: {str(e).strip().splitlines()[0]})"
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
    return why_no_gpu() is None


def why_no_gpu():
    """None when a GPU is usable; else one line saying what is missing and what to do. Never raises.

    Three cases differ in what helps: CuPy not installed (install the wheel for your CUDA),
    CuPy installed but broken (usually a wheel for another CUDA than the driver's, or missing
    CUDA libraries), and CuPy fine but no device answering (no GPU, or a driver problem).
    """
    if _cupy is None:
        if _cupy_error == "CuPy is not installed" or _cupy_error is None:
            return f"CuPy is not installed; on a machine with an NVIDIA GPU: {INSTALL_CUPY}"
        return (f"{_cupy_error}; check that the CuPy wheel matches your CUDA version "
                f"(cupy-cuda12x or cupy-cuda13x, see `nvidia-smi`)")
    try:
        count = _cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"CuPy is installed, but no CUDA device answers ({detail}); is there a GPU and a working driver?"
    if count < 1:
        return "CuPy is installed, but no CUDA device answers (0 devices); is there a GPU and a working driver?"
    return None


def check_device(device):
    """Validate a device name and return it ('cpu' or 'cuda')."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cuda":
        reason = why_no_gpu()
        if reason is not None:
            raise DeviceError(f"device 'cuda' asked for, but no GPU is available: {reason}")
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
