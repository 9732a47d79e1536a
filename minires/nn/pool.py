"""MaxPool2d and AdaptiveAvgPool2d (global average pooling).

Read from the top: ``maxpool_forward`` / ``maxpool_backward`` are the textbook max-pool (im2col
with -inf padding, then argmax). ``MaxPool2d`` runs them on the plain path (``with
minires.nn.plain():``); its fast path (``_forward_fast``, ``_backward_fast``) gets the same
numbers without building the KH*KW-times-larger columns.
"""
from .conv import _pair
from .im2col import col2im, im2col, out_size, window_slices
from .memory import channel_major, empty_channel_major
from .module import Module, is_plain
from ..backend import xp_of


def maxpool_forward(x, kernel_size, stride, padding):
    """x (N, C, H, W) -> y (N, C, OH, OW), cache: im2col with -inf padding, then argmax."""
    xp = xp_of(x)
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = kernel_size, stride, padding
    OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
    col = im2col(x, KH, KW, SH, SW, PH, PW, pad_value=-xp.inf)       # (N, KH, KW, C, OH, OW)
    col = col.reshape(N, KH * KW, C, OH, OW)
    winner = col.argmax(axis=1)                                      # (N, C, OH, OW): first max
    y = xp.take_along_axis(col, winner[:, None], axis=1)[:, 0]
    return y, (winner, (H, W), kernel_size, stride, padding)


def maxpool_backward(dy, cache):
    """dy (N, C, OH, OW) -> dx (N, C, H, W): each window's gradient goes to its winner."""
    xp = xp_of(dy)
    winner, (H, W), (KH, KW), (SH, SW), (PH, PW) = cache
    N, C, OH, OW = dy.shape
    offsets = xp.arange(KH * KW).reshape(1, KH * KW, 1, 1, 1)
    dcol = (offsets == winner[:, None]) * dy[:, None]                # (N, KH*KW, C, OH, OW)
    dcol = dcol.astype(dy.dtype, copy=False).reshape(N, KH, KW, C, OH, OW)
    return col2im(dcol, H, W, SH, SW, PH, PW)


class MaxPool2d(Module):
    """x (N, C, H, W) -> (N, C, OH, OW): the largest value of each window.

    Padding acts as -inf (a padded position never wins). The gradient goes only to the
    winner of each window (the first one, on a tie, as in PyTorch); overlapping windows
    that share a winner add their gradients (col2im adds).
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride if stride is not None else kernel_size, "stride")
        from .padding import resolve_padding   # here: padding.py builds on this file
        self.padding = resolve_padding(padding, "MaxPool2d")
        self.same = self.padding == "same"        # TensorFlow's rule, padding with -inf (see Conv2d)
        if self.same:
            self.padding = (0, 0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"MaxPool2d: padding {self.padding} must be at most half the kernel {self.kernel_size}")

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=" + (
            "'same'" if self.same else f"{self.padding}")

    def forward(self, x):
        """x (N, C, H, W) -> (N, C, OH, OW): ``maxpool_forward`` on the plain path, else ``_forward_fast``."""
        self.check_input(x, ndim=4)
        if self.same:
            from .padding import pad_same
            x = pad_same(self, x, -xp_of(x).inf)   # "same": pad a copy with -inf (never wins), then a valid pool
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        _, _, H, W = x.shape
        if out_size(H, KH, SH, PH) < 1 or out_size(W, KW, SW, PW) < 1:
            raise ValueError(f"{self._describe()}: input of size {H}x{W} is too small for a {KH}x{KW} window")
        if not is_plain():
            return self._forward_fast(x)
        y, cache = maxpool_forward(x, self.kernel_size, self.stride, self.padding)
        self.save_for_backward(*cache)
        return y

    def backward(self, grad_out):
        """grad_out (N, C, OH, OW) -> (N, C, H, W): ``maxpool_backward`` (plain) or ``_backward_fast``."""
        dx = maxpool_backward(grad_out, self.saved) if is_plain() else self._backward_fast(grad_out)
        if self.same:
            from .padding import crop_same
            dx = crop_same(self, dx)
        return dx

    # ----- the fast path -----
    def _forward_fast(self, x):
        """``maxpool_forward``'s y, stored channel-major, without building the columns: a running
        maximum over the KH*KW kernel offsets, each one strided view of x. Padding never
        wins, so it is simply left out (``window_slices``). Which offset won is worked out
        in backward, only when training needs it. Plain twin: minires/nn/pool.py:maxpool_forward.
        """
        xp = xp_of(x)
        N, C, H, W = x.shape
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
        x_cn = channel_major(x)
        y = xp.full((C, N, OH, OW), -xp.inf, dtype=x.dtype)
        for rows, cols, out_rows, out_cols in self._offsets(H, W, OH, OW):
            best = y[:, :, out_rows, out_cols]                  # a view: updated in place
            xp.maximum(best, x_cn[:, :, rows, cols], out=best)
        y = channel_major(y)
        self.save_for_backward(x, y)                            # both kept by the neighbours anyway
        return y

    def _offsets(self, H, W, OH, OW):
        """For each kernel offset (i, j), row-major: input rows/cols and the outputs that read them."""
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        for i in range(KH):
            rows, out_rows = window_slices(i, SH, PH, H, OH)
            for j in range(KW):
                cols, out_cols = window_slices(j, SW, PW, W, OW)
                yield rows, cols, out_rows, out_cols

    def _backward_fast(self, grad_out):
        """``maxpool_backward``'s dx: each window's gradient goes to its winner.

        The winner is the first offset (row-major, as PyTorch's and argmax's tie rule) whose
        value equals the window's maximum: offsets are visited last to first, so the first
        match overwrites the later ones. Overlapping windows that share a winner add their
        gradients, as col2im adds. Plain twin: minires/nn/pool.py:maxpool_backward.
        """
        xp = xp_of(grad_out)
        x, y = self.saved
        N, C, H, W = x.shape
        _, _, OH, OW = y.shape
        x_cn, y_cn, g = channel_major(x), channel_major(y), channel_major(grad_out)
        offsets = list(self._offsets(H, W, OH, OW))
        winner = xp.zeros((C, N, OH, OW), dtype=xp.int16)
        for k in reversed(range(len(offsets))):
            rows, cols, out_rows, out_cols = offsets[k]
            hit = x_cn[:, :, rows, cols] == y_cn[:, :, out_rows, out_cols]
            xp.copyto(winner[:, :, out_rows, out_cols], k, where=hit)
        dx = xp.zeros((C, N, H, W), dtype=grad_out.dtype)
        for k, (rows, cols, out_rows, out_cols) in enumerate(offsets):
            dx[:, :, rows, cols] += g[:, :, out_rows, out_cols] * (winner[:, :, out_rows, out_cols] == k)
        return channel_major(dx)


class AdaptiveAvgPool2d(Module):
    """Global average pooling: x (N, C, H, W) -> (N, C, 1, 1), the mean of each feature map.

    Only ``output_size=(1, 1)`` (or 1) is supported: it is what ResNet uses.
    """

    def __init__(self, output_size=(1, 1)):
        if _pair(output_size, "output_size") != (1, 1):
            raise ValueError(f"AdaptiveAvgPool2d: only output_size=(1, 1) (global average) is supported, "
                             f"got {output_size!r}")
        self.output_size = (1, 1)

    def extra_repr(self):
        return "output_size=(1, 1)"

    def forward(self, x):
        """x (N, C, H, W) -> (N, C, 1, 1)."""
        self.check_input(x, ndim=4)
        self.save_for_backward(x.shape)
        return x.mean(axis=(2, 3), keepdims=True)

    def backward(self, grad_out):
        """grad_out (N, C, 1, 1) -> (N, C, H, W): each pixel gets 1/(H*W) of its map's gradient."""
        xp = xp_of(grad_out)
        N, C, H, W = self.saved[0]
        if is_plain():
            dx = xp.empty((N, C, H, W), dtype=grad_out.dtype)
        else:  # the fast path: channel-major, like the activations the next backward meets
            dx = empty_channel_major(xp, (N, C, H, W), grad_out.dtype)
        dx[...] = grad_out / (H * W)                        # broadcast over H and W
        return dx
