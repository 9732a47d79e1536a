"""OpenBLAS's thread count, which NumPy does not let you set: found with ctypes, set in a block.

ThreadParallel (minires/parallel/threads.py) runs its replicas with one BLAS thread per matrix
multiply: two layers of threads on two cores fight (measured: 1.7x slower). ``blas_threads(n)``
sets the count for a block and gives the previous setting back after; where this NumPy's BLAS
cannot be found (``blas_controllable()`` False), the block runs unchanged.

The setting is the process's, not the thread's. Blocks may overlap (two ThreadParallel objects
stepped from two threads): the first to enter keeps the setting from before, each sets its
``n``, and the last to leave puts the setting back.
"""
import contextlib
import ctypes
import glob
import os
import threading

import numpy as np


class _OpenBLAS:
    """The get/set-number-of-threads functions of the OpenBLAS that NumPy's wheels bundle.

    NumPy has no API for its BLAS's threads. Its wheels ship OpenBLAS in ``numpy.libs`` (or
    ``numpy/.dylibs`` on macOS) with prefixed names (``scipy_openblas_set_num_threads64_``);
    other builds use the plain ``openblas_set_num_threads``. Loading the file again with
    ctypes returns the copy already in the process.
    """

    NAMES = [("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
             ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
             ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
             ("openblas_get_num_threads", "openblas_set_num_threads")]

    def __init__(self):
        self.get = self.set = None
        here = os.path.dirname(np.__file__)
        for folder in (os.path.join(here, "..", "numpy.libs"), os.path.join(here, ".dylibs")):
            for path in sorted(glob.glob(os.path.join(folder, "*openblas*"))):
                try:
                    lib = ctypes.CDLL(path)
                except OSError:
                    continue
                for get, set_ in self.NAMES:
                    if hasattr(lib, get) and hasattr(lib, set_):
                        self.get, self.set = getattr(lib, get), getattr(lib, set_)
                        self.get.restype, self.set.restype = ctypes.c_int, None
                        self.set.argtypes = [ctypes.c_int]
                        return


_blas = None
_lock = threading.Lock()
_inside, _before = 0, None      # how many blas_threads blocks are open, and the setting from before the first


def _openblas():
    global _blas
    if _blas is None:
        _blas = _OpenBLAS()
    return _blas


def blas_controllable():
    """True when this module can set the BLAS's thread count (NumPy's own wheels: OpenBLAS)."""
    return _openblas().set is not None


@contextlib.contextmanager
def blas_threads(n):
    """OpenBLAS runs each matrix multiply on ``n`` threads inside the block, its previous
    setting after (the last of overlapping blocks puts it back). Where it cannot be set, the
    block runs unchanged."""
    global _inside, _before
    blas = _openblas()
    if blas.set is None:
        yield
        return
    with _lock:
        if _inside == 0:
            _before = blas.get()
        _inside += 1
        blas.set(n)
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                blas.set(_before)
