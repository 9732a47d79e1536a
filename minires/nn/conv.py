"""Conv2d: convolution as one matrix multiplication per group, by im2col / col2im.

Read from the top. ``conv_forward`` and ``conv_backward`` are the textbook algorithm: im2col
of the whole batch, one matrix multiply, and col2im in the backward. ``Conv2d`` runs them when
the plain switch is on (``with minires.nn.plain():``); by default its forward and backward hand
the layer to the fast path, minires/engine/conv.py, which computes the same numbers -- the
tests check it in float64 -- with less memory traffic.
"""
import math

from . import init
from .im2col import col2im, im2col, out_size
from .module import Module, Parameter
from .padding import crop_same, pad_same, pair, resolve_padding, symmetric_same
from . import switches
from ..backend import xp_of


def conv_forward(x, w, b, stride, padding, groups=1):
    """x (N, C, H, W), w (O, C/G, KH, KW), b (O,) or None -> y (N, O, OH, OW), cache.

    The textbook convolution: im2col of the whole batch, then one matrix multiply per group.
    """
    xp = xp_of(x)
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    (SH, SW), (PH, PW), G = stride, padding, groups
    OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
    # Columns: one row per filter entry (c, i, j), one column per output pixel (n, oh, ow).
    col = im2col(x.transpose(1, 0, 2, 3), KH, KW, SH, SW, PH, PW)   # (C, KH, KW, N, OH, OW)
    col = col.reshape(G, C // G * KH * KW, N * OH * OW)              # one matrix per group
    y = xp.matmul(w.reshape(G, O // G, -1), col)                     # (G, O/G, N*OH*OW)
    y = y.reshape(O, N, OH, OW).transpose(1, 0, 2, 3)                # (N, O, OH, OW)
    if b is not None:
        y = y + b.reshape(1, O, 1, 1)
    return y, (col, w, (H, W), stride, padding)


def conv_backward(dy, cache):
    """dy (N, O, OH, OW) -> dx (N, C, H, W), dw (O, C/G, KH, KW), db (O,)."""
    xp = xp_of(dy)
    col, w, (H, W), (SH, SW), (PH, PW) = cache
    N, O, OH, OW = dy.shape
    G = col.shape[0]
    _, _, KH, KW = w.shape
    C = w.shape[1] * G
    dy_mat = dy.transpose(1, 0, 2, 3).reshape(G, O // G, N * OH * OW)
    db = dy.sum(axis=(0, 2, 3))
    # y = w @ col  =>  dw = dy @ col^T  and  dcol = w^T @ dy
    dw = xp.matmul(dy_mat, col.transpose(0, 2, 1)).reshape(w.shape)
    dcol = xp.matmul(w.reshape(G, O // G, -1).transpose(0, 2, 1), dy_mat)
    dcol = dcol.reshape(C, KH, KW, N, OH, OW)
    dx = col2im(dcol, H, W, SH, SW, PH, PW).transpose(1, 0, 2, 3)     # (N, C, H, W)
    return dx, dw, db


class Conv2d(Module):
    """2-D convolution (cross-correlation, as in every framework), NCHW.

    x (N, C, H, W) -> y (N, O, OH, OW) with OH = floor((H + 2*PH - KH) / SH) + 1.
    weight (O, C/groups, KH, KW), bias (O,). With ``groups`` = G the channels are split
    into G independent convolutions (ResNeXt's grouped 3x3), each a matrix multiply.

    ``padding``: an int or (PH, PW), PyTorch's symmetric padding; ``"valid"`` (no padding); or
    ``"same"``, TensorFlow's rule at any stride: OH = ceil(H / SH), and the padding that takes,
    total = max((OH - 1) * SH + KH - H, 0), is split with the odd pixel after (bottom, right).
    It depends on the input size, so forward computes it (minires/nn/padding.py:same_padding),
    pads a copy of x, runs a valid convolution; backward crops the gradient. This is not
    PyTorch's ``padding="same"``, which exists only at stride 1: there the two agree (odd K:
    (K - 1) / 2 each side, which this layer then uses as ordinary symmetric padding, no copy).
    At stride 2 they differ: a 7x7/2 conv on 224 pads 2 before and 3 after, ``padding=3`` pads 3 and 3.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True):
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"Conv2d: {name} must be a positive int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.same, self.padding = symmetric_same(resolve_padding(padding, "Conv2d"), self.kernel_size, self.stride)
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: kernel_size and stride must be >= 1 and padding >= 0, got "
                             f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")
        KH, KW = self.kernel_size
        fan_in = in_channels // groups * KH * KW
        bound = 1.0 / math.sqrt(fan_in)  # PyTorch's default initialisation
        self.weight = Parameter(init.uniform((out_channels, in_channels // groups, KH, KW), bound))
        self.bias = Parameter(init.uniform((out_channels,), bound)) if bias else None

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.same:
            s += ", padding='same'"
        elif self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")

    def forward(self, x):
        """x (N, C, H, W) -> (N, O, OH, OW): ``conv_forward``, or the engine's fast path."""
        self.check_input(x, ndim=4, channels=self.in_channels)
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        H, W = x.shape[2:]
        if not self.same and (out_size(H, KH, SH, PH) < 1 or out_size(W, KW, SW, PW) < 1):  # "same" always fits
            raise ValueError(f"{self._describe()}: input of size {H}x{W} is too small for a {KH}x{KW} kernel "
                             f"with padding {self.padding}; it needs at least {KH - 2 * PH}x{KW - 2 * PW}")
        if self.fast and not switches.plain_path:
            return self.fast.forward(self, x)     # the engine: minires/engine/conv.py
        if self.same:
            x = pad_same(self, x, 0.0)            # TensorFlow's "same": pad a copy, then a valid conv
        bias = None if self.bias is None else self.bias.data
        y, cache = conv_forward(x, self.weight.data, bias, self.stride, self.padding, self.groups)
        self.save_for_backward(*cache)
        return y

    def backward(self, grad_out):
        """grad_out (N, O, OH, OW) -> grad wrt x (N, C, H, W); adds into weight.grad and bias.grad."""
        if self.fast and not switches.plain_path:
            return self.fast.backward(self, grad_out)   # the engine: minires/engine/conv.py
        dx, dw, db = conv_backward(grad_out, self.saved)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        if self.same:
            dx = crop_same(self, dx)              # the padded border's gradient goes nowhere
        return dx


class Conv2dSame(Conv2d):
    """``Conv2d(..., padding="same")`` (TensorFlow's rule at any stride), spelled as timm does."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding="same", groups=groups,
                         bias=bias)


def same_conv(in_channels, out_channels, kernel_size, stride=1, bias=False):
    """``Conv2d(..., padding="same")``: symmetric padding at stride 1 with an odd kernel (no copy),
    TensorFlow's computed padding otherwise."""
    return Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding="same", bias=bias)
