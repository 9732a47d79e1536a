"""MaxPool2d and AdaptiveAvgPool2d (global average pooling)."""
from .conv import _pair
from .im2col import out_size, window_slices
from .memory import channels_first, empty_nchw
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
        """x (N, C, H, W) -> (N, C, OH, OW), stored channel-major.

        The same numbers as ``maxpool_forward`` in ``reference.py`` (im2col with -inf
        padding, then argmax), without building the KH*KW-times-larger columns: a running
        maximum over the KH*KW kernel offsets, each one strided view of x. Padding never
        wins, so it is simply left out (``window_slices``). Which offset won is worked out
        in backward, only when training needs it.
        """
        self.check_input(x, ndim=4)
        xp = xp_of(x)
        N, C, H, W = x.shape
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
        if OH < 1 or OW < 1:
            raise ValueError(f"{self._describe()}: input of size {H}x{W} is too small for a {KH}x{KW} window")
        x_cn = channels_first(x)
        y = xp.full((C, N, OH, OW), -xp.inf, dtype=x.dtype)
        for rows, cols, out_rows, out_cols in self._offsets(H, W, OH, OW):
            best = y[:, :, out_rows, out_cols]                  # a view: updated in place
            xp.maximum(best, x_cn[:, :, rows, cols], out=best)
        y = channels_first(y)
        self.cache = (x, y) if is_grad_enabled() else None     # both kept by the neighbours anyway
        return y

    def _offsets(self, H, W, OH, OW):
        """For each kernel offset (i, j), row-major: input rows/cols and the outputs that read them."""
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        for i in range(KH):
            rows, out_rows = window_slices(i, SH, PH, H, OH)
            for j in range(KW):
                cols, out_cols = window_slices(j, SW, PW, W, OW)
                yield rows, cols, out_rows, out_cols

    def backward(self, grad_out):
        """grad_out (N, C, OH, OW) -> (N, C, H, W): each window's gradient goes to its winner.

        The winner is the first offset (row-major, as PyTorch's and argmax's tie rule) whose
        value equals the window's maximum: offsets are visited last to first, so the first
        match overwrites the later ones. Overlapping windows that share a winner add their
        gradients, as col2im adds.
        """
        if self.cache is None:
            raise RuntimeError(f"{self._describe()}: backward called without a forward (or under no_grad)")
        xp = xp_of(grad_out)
        x, y = self.cache
        N, C, H, W = x.shape
        _, _, OH, OW = y.shape
        x_cn, y_cn, g = channels_first(x), channels_first(y), channels_first(grad_out)
        offsets = list(self._offsets(H, W, OH, OW))
        winner = xp.zeros((C, N, OH, OW), dtype=xp.int16)
        for k in reversed(range(len(offsets))):
            rows, cols, out_rows, out_cols = offsets[k]
            hit = x_cn[:, :, rows, cols] == y_cn[:, :, out_rows, out_cols]
            xp.copyto(winner[:, :, out_rows, out_cols], k, where=hit)
        dx = xp.zeros((C, N, H, W), dtype=grad_out.dtype)
        for k, (rows, cols, out_rows, out_cols) in enumerate(offsets):
            dx[:, :, rows, cols] += g[:, :, out_rows, out_cols] * (winner[:, :, out_rows, out_cols] == k)
        return channels_first(dx)


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
        dx = empty_nchw(xp, (N, C, H, W), grad_out.dtype)   # channel-major, like the activations
        dx[...] = grad_out / (H * W)                        # broadcast over H and W
        return dx
