"""What every weights format shares: the error type, the bounds every reader checks, atomic
writes that leave no litter, bfloat16 widening."""
import contextlib
import errno
import os
import re
import tempfile

import numpy as np

from .. import files
from ..backend import to_numpy


class WeightsError(ValueError):
    """A weights file is corrupt, truncated, lies about its own layout, or asks for
    something we refuse to do (like calling a function that is not on the allow-list)."""


# ------------------------------------------------------------------ bounds for files from strangers
# A file may claim anything; these are checked before any arithmetic or allocation that
# trusts a claim. Python ints are unbounded, so a 4,000-digit "size" must be refused before
# math.prod (quadratic in the digits) ever sees it.
MAX_INT = 2 ** 63            # sizes, strides, offsets: ints in [0, MAX_INT), as torch's int64
MAX_RANK = 64                # torch and NumPy allow at most 64 dimensions
EXPANSION = 4                # a reader may produce at most EXPANSION x the file's bytes ...
SLACK_BYTES = 16 << 20       # ... plus 16 MiB (room for the zero-stride "expand" tensors torch writes)


def check_index(value, what):
    """``value`` must be an int (not bool) in [0, 2**63); returns it."""
    if type(value) is not int or not 0 <= value < MAX_INT:
        if type(value) is int and abs(value) > 10 ** 30:
            shown = f"an int of {value.bit_length()} bits"      # never print (or str()) a huge int
        else:
            shown = f"{value!r:.60}"
        raise WeightsError(f"{what} must be an int in [0, 2**63), got {shown}")
    return value


def check_shape(shape, itemsize, what):
    """A tensor shape from a file: a list/tuple of at most 64 ints in [0, 2**63) whose byte
    count (even for an empty tensor: NumPy multiplies the non-zero dimensions) fits in int64.
    Returns ``(shape tuple, number of elements)``."""
    if not isinstance(shape, (tuple, list)):
        raise WeightsError(f"{what}: the shape must be a list of ints, got {type(shape).__name__}")
    if len(shape) > MAX_RANK:
        raise WeightsError(f"{what}: {len(shape)} dimensions; at most {MAX_RANK} are allowed")
    shape = tuple(check_index(n, f"{what}: every dimension") for n in shape)
    room = MAX_INT // max(itemsize, 1)
    nonzero = 1
    for n in shape:                  # stop as soon as the product leaves int64: no huge ints
        nonzero *= max(n, 1)
        if nonzero >= room:
            raise WeightsError(f"{what}: shape {list(shape)} of {itemsize}-byte elements exceeds 2**63 "
                               "bytes (NumPy cannot represent it, even with a zero dimension)")
    return shape, (0 if 0 in shape else nonzero)


class OutputBudget:
    """How many bytes a reader may still produce: ``EXPANSION * file_size + SLACK_BYTES``.

    A 1 KB file can describe a terabyte (40 tensors expanded with stride 0 over one
    16-byte storage, a deflate bomb); the reader charges each array before allocating it.
    """

    def __init__(self, file_size, expansion=EXPANSION, slack=SLACK_BYTES):
        self.limit = expansion * file_size + slack
        self.left = self.limit
        self.file_size, self.expansion, self.slack = file_size, expansion, slack

    def charge(self, nbytes, what):
        if nbytes > self.left:
            raise WeightsError(f"{what} would bring the output past {self.limit} bytes "
                               f"({self.expansion}x the file's {self.file_size} bytes + {self.slack >> 20} MiB); "
                               "refusing a file that expands that much")
        self.left -= nbytes


# ------------------------------------------------------------------ opening a file from a stranger
def open_regular_file(path):
    """Open the weights file ``path`` for reading, if it is a regular file: a FIFO, a device or a
    directory is a WeightsError (``x.h5: a FIFO (named pipe), not a weights file``), a missing
    file a FileNotFoundError (``no weights file at x.h5``). The rules: :func:`minires.files.open_regular_file`."""
    return files.open_regular_file(path, WeightsError, "weights file")


# ------------------------------------------------------------------ atomic writes, no litter
# A temporary file is named ".<target>.<pid>.<random>.tmp". A process killed mid-write
# (kill -9, power loss) leaves one behind; the next write of the same target removes those
# whose process is gone, so they never pile up.
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}   # no space, or over the user's quota
_TEMP = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True                  # exists (another user's), or unknowable: keep the file
    return True


def remove_stale_temporaries(folder, target=None):
    """Remove the temporary files of interrupted atomic writes in ``folder`` (only those of
    ``target``'s base name if given) whose writing process no longer runs. Returns their names."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP.match(name)
        if m and (target is None or m["target"] == target) and not _pid_alive(int(m["pid"])):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name))
                removed.append(name)
    return removed


@contextlib.contextmanager
def atomic_write(path):
    """Open a temporary file next to ``path`` for binary writing; on success move it onto ``path``.

    ``os.replace`` is atomic on POSIX and Windows when both names are on the same file
    system, which is why the temporary file lives in the target's own folder. Whatever
    goes wrong while writing, the old ``path`` (if any) is left untouched and the
    temporary file is removed; one left by a killed process is removed by the next write.

        with atomic_write("model.npz") as f:
            f.write(...)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    remove_stale_temporaries(folder, base)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.{os.getpid()}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private (0600); a saved file is an ordinary one
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno in _DISK_FULL:   # "[Errno 28]" alone names no file
            raise OSError(e.errno, f"{os.strerror(e.errno)}: cannot write {path} (its folder's disk is full; "
                                   f"the previous {base}, if any, is unchanged)") from e
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
