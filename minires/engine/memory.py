"""How activations sit in memory, scratch buffers that are reused instead of reallocated, and
when a layer may write over its input.

Three tricks that the fast layers share; none changes a single number, only where the
numbers are stored.

1. Channel-major activations. Every array a layer hands on has the shape PyTorch gives it,
   (N, C, H, W), but the fast layers store it channel by channel: the memory is a
   (C, N, H, W) block, and the (N, C, H, W) array is a transposed *view* of it
   (``buf.transpose(1, 0, 2, 3)``, no copy). Why: a convolution by im2col computes
   ``w (O, C*KH*KW) @ col (C*KH*KW, N*OH*OW)``, whose result is (O, N*OH*OW) -- channel-major.
   Keeping that layout through the network means no transpose per layer: batch norm sees
   each channel as one contiguous row of N*H*W values (``channel_major_matrix``), ReLU and
   the residual add are layout-blind, and the next convolution reads its input as
   (C, N, H, W) for free (``channel_major(x)``, a view).
   A plain NCHW array (the input images, or anything a student builds) works everywhere
   too: ``channel_major_matrix`` then copies it once.

2. Workspaces. A 100 MB temporary allocated afresh in every call costs more than the
   arithmetic done in it: the operating system hands out new memory one zeroed page at a
   time. ``workspace(name, shape, dtype, xp)`` returns a scratch array carved out of a buffer
   kept from the previous call (grown when a bigger one is asked for). The rule that makes
   this safe: a workspace never leaves the function that asked for it -- it is not returned,
   kept for backward, and two live scratch arrays never share a name. Buffers are per
   thread, per array module (NumPy or CuPy) and per dtype, so float64 gradient checks, a
   layer used twice, and CuPy arrays all stay apart. ``release_workspaces()`` frees them.

3. In place. ``ReLU(inplace=True)`` and ``BatchNorm2d(inplace=True)`` write their output over
   their input on the fast path, when ``may_overwrite`` says no layer kept it for backward.
"""
import math
import threading

import numpy as np

from ..nn import module

_local = threading.local()


def channel_major(x):
    """Swap the first two axes, a view (no copy): (N, C, H, W) -> (C, N, H, W), and back.

    Applied to an activation, it gives the channel-major block the fast layers store; applied
    to a (C, N, H, W) block, it gives the (N, C, H, W) array the layers hand on.
    """
    return x.transpose(1, 0, 2, 3)


def channel_major_matrix(x):
    """(N, C, H, W) -> (C, N*H*W): one row per channel.

    A view when ``x`` is stored channel-major (what the fast layers produce); a copy otherwise.
    """
    C = x.shape[1]
    return channel_major(x).reshape(C, -1)


def from_channel_major_matrix(m, shape):
    """(C, N*H*W) -> the (N, C, H, W) view of it, ``shape`` = (N, C, H, W); the inverse of
    ``channel_major_matrix``."""
    N, C, H, W = shape
    return channel_major(m.reshape(C, N, H, W))


def empty_channel_major(xp, shape, dtype):
    """A new (N, C, H, W) array stored channel-major (see the module docstring); uninitialised."""
    N, C, H, W = shape
    return channel_major(xp.empty((C, N, H, W), dtype=dtype))


def zeros_channel_major(xp, shape, dtype):
    """A new (N, C, H, W) array of zeros stored channel-major."""
    N, C, H, W = shape
    return channel_major(xp.zeros((C, N, H, W), dtype=dtype))


def workspace(name, shape, dtype, xp):
    """A scratch array of ``shape`` and ``dtype``, reused across calls (contents undefined).

    Never return it, never keep it after the call: the next call with the same ``name``
    overwrites it.
    """
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    key = (name, xp.__name__, np.dtype(dtype).str)
    size = math.prod(shape)
    buf = pool.get(key)
    if buf is None or buf.size < size:
        buf = pool[key] = xp.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def release_workspaces():
    """Free every scratch buffer of this thread (they are recreated on demand)."""
    _local.pool = {}


def may_overwrite(x):
    """May an in-place layer write its output over ``x``? Only if no layer kept x for backward.

    The one rule of every in-place operation in minires (``ReLU(inplace=True)``,
    ``BatchNorm2d(inplace=True)``, the blocks' residual add): write over an input only when no
    layer's ``save_for_backward`` kept that memory (``nn/module.py:kept``). A ReLU keeps its output, a max-pool its
    input and output: a batch norm after either must not overwrite them, or their backward
    would read the batch norm's numbers (a silently wrong gradient). A convolution keeps its
    input, not its output, so the batch norm after it may. When the answer is no, the layer
    simply allocates a new array.
    """
    owner = x if x.base is None else x.base
    return id(owner) not in module.kept and id(owner) not in module.kept_for_good
