"""What every weights format shares: the error type, atomic writes, bfloat16 widening."""
import contextlib
import os
import tempfile

import numpy as np

from ..backend import to_numpy


class WeightsError(ValueError):
    """A weights file is corrupt, truncated, lies about its own layout, or asks for
    something we refuse to do (like calling a function that is not on the allow-list)."""


@contextlib.contextmanager
def atomic_write(path):
    """Open a temporary file next to ``path`` for binary writing; on success move it onto ``path``.

    ``os.replace`` is atomic on POSIX and Windows when both names are on the same file
    system, which is why the temporary file lives in the target's own folder. Whatever
    goes wrong while writing, the old ``path`` (if any) is left untouched and the
    temporary file is removed.

        with atomic_write("model.npz") as f:
            f.write(...)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private (0600); a saved file is an ordinary one
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def bfloat16_to_float32(bits):
    """Widen bfloat16 numbers, given as their raw uint16 bit patterns, to float32. Exact.

    bfloat16 is the top half of a float32: same sign bit, same 8 exponent bits, only 7 of
    the 23 mantissa bits. Putting the 16 bits back on top of 16 zero bits gives the very
    float32 number the bfloat16 stands for.
    """
    bits = np.asarray(bits).astype(np.uint16, copy=False)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def as_numpy_state_dict(state_dict, what="state_dict"):
    """Check that ``state_dict`` maps str -> array and return an ordered dict of NumPy arrays.

    CuPy arrays are copied to the host; anything that is not an array is a clear error.
    """
    if not hasattr(state_dict, "items"):
        raise TypeError(f"{what} must be a dict of name -> array, got {type(state_dict).__name__}")
    out = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"{what} keys must be str, got {name!r} ({type(name).__name__})")
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            raise TypeError(f"{what}[{name!r}] must be an array, got {type(value).__name__}")
        out[name] = to_numpy(value)
    return out
