"""MaxPool2d and AdaptiveAvgPool2d (global average pooling).

Read from the top: ``maxpool_forward`` / ``maxpool_backward`` are the textbook max-pool (im2col
with -inf padding, then argmax). ``MaxPool2d`` runs them on the plain path (``with
minires.nn.plain():``); its fast path (minires/engine/pool.py) gets the same numbers without
building the KH*KW-times-larger columns.
"""
from .im2col import col2im, im2col, out_size
from .module import Module
from .padding import crop_same, pad_same, pair, resolve_padding
from . import switches
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
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "stride")
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
        """x (N, C, H, W) -> (N, C, OH, OW): ``maxpool_forward``, or the engine's fast path."""
        self.check_input(x, ndim=4)
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        H, W = x.shape[2:]
        if not self.same and (out_size(H, KH, SH, PH) < 1 or out_size(W, KW, SW, PW) < 1):  # "same" always fits
            raise ValueError(f"{self._describe()}: input of size {H}x{W} is too small for a {KH}x{KW} window")
        if self.fast and not switches.plain_path:
            return self.fast.forward(self, x)      # the engine: minires/engine/pool.py
        if self.same:
            x = pad_same(self, x, -xp_of(x).inf)   # "same": pad a copy with -inf (never wins), then a valid pool
        y, cache = maxpool_forward(x, self.kernel_size, self.stride, self.padding)
        self.save_for_backward(*cache)
        return y

    def backward(self, grad_out):
        """grad_out (N, C, OH, OW) -> (N, C, H, W): each window's gradient to its winner."""
        if self.fast and not switches.plain_path:
            return self.fast.backward(self, grad_out)  # the engine: minires/engine/pool.py
        dx = maxpool_backward(grad_out, self.saved)
        return crop_same(self, dx) if self.same else dx


class AdaptiveAvgPool2d(Module):
    """Global average pooling: x (N, C, H, W) -> (N, C, 1, 1), the mean of each feature map.

    Only ``output_size=(1, 1)`` (or 1) is supported: it is what ResNet uses.
    """

    def __init__(self, output_size=(1, 1)):
        if pair(output_size, "output_size") != (1, 1):
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
        if self.fast and not switches.plain_path:
            return self.fast.backward(self, grad_out)   # the engine: minires/engine/pool.py
        N, C, H, W = self.saved[0]
        dx = xp_of(grad_out).empty((N, C, H, W), dtype=grad_out.dtype)
        dx[...] = grad_out / (H * W)                        # broadcast over H and W
        return dx


class MaxPool2dSame(MaxPool2d):
    """``MaxPool2d(..., padding="same")``: Keras's ``MaxPooling2D(3, strides=2, padding="same")``."""

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride=stride, padding="same")
