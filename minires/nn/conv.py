"""Conv2d: convolution as one matrix multiplication per group, by im2col / col2im."""
import math

from . import init
from .im2col import col2im, im2col, out_size
from .module import Module, Parameter, is_grad_enabled
from ..backend import xp_of


def _pair(v, name):
    """An int or a pair of ints -> a pair of ints (height, width)."""
    pair = (v, v) if isinstance(v, int) else tuple(v)
    if len(pair) != 2 or not all(isinstance(a, int) for a in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    return pair


class Conv2d(Module):
    """2-D convolution (cross-correlation, as in every framework), NCHW.

    x (N, C, H, W) -> y (N, O, OH, OW) with OH = floor((H + 2*PH - KH) / SH) + 1.
    weight (O, C/groups, KH, KW), bias (O,). With ``groups`` = G the channels are split
    into G independent convolutions (ResNeXt's grouped 3x3), each a matrix multiply.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True):
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"Conv2d: {name} must be a positive int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: kernel_size and stride must be >= 1 and padding >= 0, got "
                             f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")
        KH, KW = self.kernel_size
        fan_in = in_channels // groups * KH * KW
        bound = 1.0 / math.sqrt(fan_in)  # PyTorch's default initialisation
        self.weight = Parameter(init.uniform((out_channels, in_channels // groups, KH, KW), bound))
        self.bias = Parameter(init.uniform((out_channels,), bound)) if bias else None
        self.cache = None

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")

    def forward(self, x):
        """x (N, C, H, W) -> (N, O, OH, OW)."""
        self.check_input(x, ndim=4, channels=self.in_channels)
        xp = xp_of(x)
        N, C, H, W = x.shape
        O, G = self.out_channels, self.groups
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
        if OH < 1 or OW < 1:
            raise ValueError(f"{self._describe()}: input of size {H}x{W} is too small for a {KH}x{KW} kernel "
                             f"with padding {self.padding}; it needs at least {KH - 2 * PH}x{KW - 2 * PW}")
        # Columns: one row per filter entry (c, i, j), one column per output pixel (n, oh, ow).
        col = im2col(x.transpose(1, 0, 2, 3), KH, KW, SH, SW, PH, PW)   # (C, KH, KW, N, OH, OW)
        col = col.reshape(G, C // G * KH * KW, N * OH * OW)              # one matrix per group
        w = self.weight.data.reshape(G, O // G, C // G * KH * KW)
        y = xp.matmul(w, col)                                            # (G, O/G, N*OH*OW)
        y = y.reshape(O, N, OH, OW).transpose(1, 0, 2, 3)                # (N, O, OH, OW)
        if self.bias is not None:
            y = y + self.bias.data.reshape(1, O, 1, 1)
        self.cache = (col, (H, W)) if is_grad_enabled() else None
        return y

    def backward(self, grad_out):
        """grad_out (N, O, OH, OW) -> grad wrt x (N, C, H, W); adds into weight.grad and bias.grad."""
        if self.cache is None:
            raise RuntimeError(f"{self._describe()}: backward called without a forward (or under no_grad)")
        xp = xp_of(grad_out)
        col, (H, W) = self.cache
        N, O, OH, OW = grad_out.shape
        C, G = self.in_channels, self.groups
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        dy = grad_out.transpose(1, 0, 2, 3).reshape(G, O // G, N * OH * OW)
        if self.bias is not None:
            self.bias.grad += grad_out.sum(axis=(0, 2, 3))
        # y = w @ col  =>  dw = dy @ col^T  and  dcol = w^T @ dy
        self.weight.grad += xp.matmul(dy, col.transpose(0, 2, 1)).reshape(self.weight.data.shape)
        w = self.weight.data.reshape(G, O // G, C // G * KH * KW)
        dcol = xp.matmul(w.transpose(0, 2, 1), dy)                       # (G, C/G*KH*KW, N*OH*OW)
        dcol = dcol.reshape(C, KH, KW, N, OH, OW)
        return col2im(dcol, H, W, SH, SW, PH, PW).transpose(1, 0, 2, 3)  # (N, C, H, W)
