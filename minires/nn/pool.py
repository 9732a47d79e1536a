"""MaxPool2d and AdaptiveAvgPool2d (global average pooling)."""
from .conv import _pair
from .im2col import col2im, im2col, out_size
from .module import Module, is_grad_enabled
from ..backend import xp_of


class MaxPool2d(Module):
    """x (N, C, H, W) -> (N, C, OH, OW): the largest value of each window.

    Padding acts as -inf (a padded position never wins). The gradient goes only to the
    winner of each window (the first one, on a tie, as in PyTorch); overlapping windows
    that share a winner add their gradients (col2im adds).
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride if stride is not None else kernel_size, "stride")
        self.padding = _pair(padding, "padding")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"MaxPool2d: padding {self.padding} must be at most half the kernel {self.kernel_size}")
        self.cache = None

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, x):
        self.check_input(x, ndim=4)
        xp = xp_of(x)
        N, C, H, W = x.shape
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
        if OH < 1 or OW < 1:
            raise ValueError(f"{self._describe()}: input of size {H}x{W} is too small for a {KH}x{KW} window")
        col = im2col(x, KH, KW, SH, SW, PH, PW, pad_value=-xp.inf)     # (N, KH, KW, C, OH, OW)
        col = col.reshape(N, KH * KW, C, OH, OW)
        winner = col.argmax(axis=1)                                     # (N, C, OH, OW): first max
        y = xp.take_along_axis(col, winner[:, None], axis=1)[:, 0]
        self.cache = (winner, (H, W)) if is_grad_enabled() else None
        return y

    def backward(self, grad_out):
        """grad_out (N, C, OH, OW) -> (N, C, H, W)."""
        if self.cache is None:
            raise RuntimeError(f"{self._describe()}: backward called without a forward (or under no_grad)")
        xp = xp_of(grad_out)
        winner, (H, W) = self.cache
        N, C, OH, OW = grad_out.shape
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        # each window sends its gradient to the position of its winner, zero elsewhere
        offsets = xp.arange(KH * KW).reshape(1, KH * KW, 1, 1, 1)
        dcol = (offsets == winner[:, None]) * grad_out[:, None]         # (N, KH*KW, C, OH, OW)
        dcol = dcol.astype(grad_out.dtype, copy=False).reshape(N, KH, KW, C, OH, OW)
        return col2im(dcol, H, W, SH, SW, PH, PW)


class AdaptiveAvgPool2d(Module):
    """Global average pooling: x (N, C, H, W) -> (N, C, 1, 1), the mean of each feature map.

    Only ``output_size=(1, 1)`` (or 1) is supported: it is what ResNet uses.
    """

    def __init__(self, output_size=(1, 1)):
        if _pair(output_size, "output_size") != (1, 1):
            raise ValueError(f"AdaptiveAvgPool2d: only output_size=(1, 1) (global average) is supported, "
                             f"got {output_size!r}")
        self.output_size = (1, 1)
        self.cache = None

    def extra_repr(self):
        return "output_size=(1, 1)"

    def forward(self, x):
        self.check_input(x, ndim=4)
        self.cache = x.shape if is_grad_enabled() else None
        return x.mean(axis=(2, 3), keepdims=True)

    def backward(self, grad_out):
        """grad_out (N, C, 1, 1) -> (N, C, H, W): each pixel gets 1/(H*W) of its map's gradient."""
        if self.cache is None:
            raise RuntimeError(f"{self._describe()}: backward called without a forward (or under no_grad)")
        xp = xp_of(grad_out)
        N, C, H, W = self.cache
        return xp.broadcast_to(grad_out / (H * W), (N, C, H, W)).copy()
