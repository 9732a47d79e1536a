"""The fast path of MaxPool2d and AdaptiveAvgPool2d: the textbook's numbers, channel-major,
without the KH*KW-times-larger columns of the plain max-pool (minires/nn/pool.py).

``forward(layer, x)`` and ``backward(layer, grad_out)`` are what ``MaxPool2d`` hands the layer
to, ``avgpool_backward`` what ``AdaptiveAvgPool2d.backward`` does (engine/__init__.py registers them).
"""
from .im2col import window_slices
from .memory import channel_major, empty_channel_major
from .padding import pad_same_channel_major
from ..backend import xp_of
from ..nn.im2col import out_size
from ..nn.padding import crop_same


def forward(layer, x):
    """MaxPool2d's forward on the fast path: "same" padding (-inf) channel-major, then
    ``maxpool_forward_fast``. Plain twin: minires/nn/pool.py:MaxPool2d.forward."""
    if layer.same:
        x = pad_same_channel_major(layer, x, -xp_of(x).inf)
    return maxpool_forward_fast(layer, x)


def backward(layer, grad_out):
    """MaxPool2d's backward on the fast path. Plain twin: minires/nn/pool.py:MaxPool2d.backward."""
    dx = maxpool_backward_fast(layer, grad_out)
    return crop_same(layer, dx) if layer.same else dx


def maxpool_forward_fast(layer, x):
    """``maxpool_forward``'s y, stored channel-major, without building the columns: a running
    maximum over the KH*KW kernel offsets, each one strided view of x. Padding never
    wins, so it is simply left out (``window_slices``). Which offset won is worked out
    in backward, only when training needs it. Plain twin: minires/nn/pool.py:maxpool_forward.
    """
    xp = xp_of(x)
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = layer.kernel_size, layer.stride, layer.padding
    OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
    x_cn = channel_major(x)
    y = xp.full((C, N, OH, OW), -xp.inf, dtype=x.dtype)
    for rows, cols, out_rows, out_cols in window_offsets(layer, H, W, OH, OW):
        best = y[:, :, out_rows, out_cols]                  # a view: updated in place
        xp.maximum(best, x_cn[:, :, rows, cols], out=best)
    y = channel_major(y)
    layer.save_for_backward(x, y)                            # both kept by the neighbours anyway
    return y


def window_offsets(layer, H, W, OH, OW):
    """For each kernel offset (i, j), row-major: input rows/cols and the outputs that read them."""
    (KH, KW), (SH, SW), (PH, PW) = layer.kernel_size, layer.stride, layer.padding
    for i in range(KH):
        rows, out_rows = window_slices(i, SH, PH, H, OH)
        for j in range(KW):
            cols, out_cols = window_slices(j, SW, PW, W, OW)
            yield rows, cols, out_rows, out_cols


def maxpool_backward_fast(layer, grad_out):
    """``maxpool_backward``'s dx: each window's gradient goes to its winner.

    The winner is the first offset (row-major, as PyTorch's and argmax's tie rule) whose
    value equals the window's maximum: offsets are visited last to first, so the first
    match overwrites the later ones. Overlapping windows that share a winner add their
    gradients, as col2im adds. Plain twin: minires/nn/pool.py:maxpool_backward.
    """
    xp = xp_of(grad_out)
    x, y = layer.saved
    N, C, H, W = x.shape
    _, _, OH, OW = y.shape
    x_cn, y_cn, g = channel_major(x), channel_major(y), channel_major(grad_out)
    offsets = list(window_offsets(layer, H, W, OH, OW))
    winner = xp.zeros((C, N, OH, OW), dtype=xp.int16)
    for k in reversed(range(len(offsets))):
        rows, cols, out_rows, out_cols = offsets[k]
        hit = x_cn[:, :, rows, cols] == y_cn[:, :, out_rows, out_cols]
        xp.copyto(winner[:, :, out_rows, out_cols], k, where=hit)
    dx = xp.zeros((C, N, H, W), dtype=grad_out.dtype)
    for k, (rows, cols, out_rows, out_cols) in enumerate(offsets):
        dx[:, :, rows, cols] += g[:, :, out_rows, out_cols] * (winner[:, :, out_rows, out_cols] == k)
    return channel_major(dx)


def avgpool_backward(layer, grad_out):
    """AdaptiveAvgPool2d's backward, the gradient stored channel-major like the activations the
    next backward meets. Plain twin: minires/nn/pool.py:AdaptiveAvgPool2d.backward."""
    N, C, H, W = layer.saved[0]
    dx = empty_channel_major(xp_of(grad_out), (N, C, H, W), grad_out.dtype)
    dx[...] = grad_out / (H * W)                        # broadcast over H and W
    return dx
