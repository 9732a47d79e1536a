"""TensorFlow's padding rules ("same", "valid") and explicit, possibly asymmetric, padding.

PyTorch pads every side by the same ``padding`` (Conv2d(7, stride=2, padding=3) on 224:
3 before, 3 after). TensorFlow and Keras instead say *what output size* they want:

    "valid":  no padding; OH = floor((H - KH) / SH) + 1
    "same":   OH = ceil(H / SH), and the padding that achieves it is
              total = max((OH - 1) * SH + KH - H, 0),  before = total // 2,  after = total - before

So when ``total`` is odd the extra pixel goes *after* (bottom, right). A 7x7/2 conv on 224:
total = 111*2 + 7 - 224 = 5, so 2 before and 3 after; on 225 it is 6, so 3 and 3. The
padding depends on the input size, which is why it is computed in ``forward``. At stride 1
with an odd kernel it is always (K - 1) / 2 on each side, exactly PyTorch's symmetric padding;
PyTorch's own ``padding="same"`` exists only at stride 1 for that reason (at stride > 1 the
answer depends on H, and PyTorch refuses it).

The layers here pad explicitly, then run a *valid* convolution or pooling:

    same_padding(size, k, s)      -> (before, after), TensorFlow's rule
    pad2d(x, pads, value)         -> x padded by (left, right, top, bottom) with ``value``
    crop2d(g, pads)               -> the adjoint of pad2d: the gradient of the padded border is dropped
    ZeroPad2d((l, r, t, b))       -> Keras's ZeroPadding2D / PyTorch's ZeroPad2d, as a Module
    Conv2dSame, MaxPool2dSame     -> Conv2d / MaxPool2d with padding "same" (zeros / -inf), any stride

Max-pool pads with -inf (a padded position never wins); a convolution with 0. The backward of
padding is a crop: a padded pixel is a constant, so its gradient goes nowhere.

Cost: one padded copy of the input per layer (the plain way). Conv2d's own symmetric padding
avoids that copy, so the models use ``Conv2d(padding=(K-1)//2)`` wherever "same" is symmetric
whatever the input size (stride 1, odd kernel) -- see ``same_conv``.
"""
from .conv import Conv2d, _pair
from .module import Module
from .pool import MaxPool2d
from ..backend import xp_of


def same_padding(size, k, s):
    """TensorFlow's "same" padding along one axis: (before, after), the extra pixel after.

    The output has ceil(size / s) entries; the last window must end inside the padded input.
    """
    for name, v in (("size", size), ("kernel", k), ("stride", s)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"same_padding: {name} must be a positive int, got {v!r}")
    out = -(-size // s)                             # ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def same_pads(H, W, kernel_size, stride):
    """(left, right, top, bottom) of "same" padding for an H x W input (PyTorch's ZeroPad2d order)."""
    (KH, KW), (SH, SW) = kernel_size, stride
    top, bottom = same_padding(H, KH, SH)
    left, right = same_padding(W, KW, SW)
    return left, right, top, bottom


def resolve_padding(padding, kernel_size, name):
    """``padding`` as a layer accepts it -> "same", or a (PH, PW) pair ("valid" is (0, 0))."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0)
        if mode == "same":
            return "same"
        raise ValueError(f"{name}: padding must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
    return _pair(padding, "padding")


def pad2d(x, pads, value=0.0):
    """x (N, C, H, W) -> (N, C, top + H + bottom, left + W + right), the border filled with ``value``.

    ``pads`` = (left, right, top, bottom). The result is stored channel-major like every
    activation (``memory.py``), so the convolution that reads it needs no transpose.
    """
    left, right, top, bottom = pads
    xp = xp_of(x)
    N, C, H, W = x.shape
    out = xp.full((C, N, top + H + bottom, left + W + right), value, dtype=x.dtype)
    out[:, :, top:top + H, left:left + W] = x.transpose(1, 0, 2, 3)
    return out.transpose(1, 0, 2, 3)


def crop2d(g, pads):
    """The backward of pad2d: g (N, C, H + top + bottom, W + left + right) -> its interior (N, C, H, W).

    A padded pixel is a constant: its gradient is simply dropped. The result is a view of g.
    """
    left, right, top, bottom = pads
    _, _, HP, WP = g.shape
    return g[:, :, top:HP - bottom, left:WP - right]


def _pads4(padding):
    """An int (all sides) or (left, right, top, bottom) -> a 4-tuple of non-negative ints."""
    pads = (padding,) * 4 if isinstance(padding, int) else padding
    if not isinstance(pads, (tuple, list)) or len(pads) != 4 or not all(isinstance(p, int) and p >= 0 for p in pads):
        raise ValueError(f"ZeroPad2d: padding must be a non-negative int or (left, right, top, bottom), "
                         f"got {padding!r}")
    return tuple(pads)


class ZeroPad2d(Module):
    """x (N, C, H, W) -> (N, C, top + H + bottom, left + W + right), zeros around the border.

    ``padding``: an int (every side) or (left, right, top, bottom), PyTorch's order. Keras's
    ``ZeroPadding2D(((top, bottom), (left, right)))`` is ``ZeroPad2d((left, right, top, bottom))``.
    Backward: the gradient of the interior (``crop2d``).
    """

    def __init__(self, padding):
        self.padding = _pads4(padding)

    def extra_repr(self):
        return f"padding={self.padding}  # (left, right, top, bottom)"

    def forward(self, x):
        self.check_input(x, ndim=4)
        self.save_for_backward(x.shape)                 # nothing but the guard is needed
        return pad2d(x, self.padding, 0.0)

    def backward(self, grad_out):
        _ = self.saved                                  # raises if there was no forward
        return crop2d(grad_out, self.padding)


class Conv2dSame(Conv2d):
    """Conv2d with TensorFlow's ``padding="same"`` at any stride: OH = ceil(H / SH).

    forward: compute (left, right, top, bottom) from the input size (``same_pads``), pad with
    zeros (``pad2d``), then Conv2d's valid convolution. backward: Conv2d's backward on the
    padded input, then ``crop2d``. Same parameters and state_dict keys as Conv2d.
    Differs from PyTorch's ``padding="same"``, which is stride 1 only (where both are symmetric).
    """

    pad_value = 0.0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, groups=groups, bias=bias)
        self.pads = None

    def extra_repr(self):
        return super().extra_repr() + ", padding='same'"

    def forward(self, x):
        self.check_input(x, ndim=4, channels=self.in_channels)
        pads = same_pads(x.shape[2], x.shape[3], self.kernel_size, self.stride)
        self.pads = pads
        return super().forward(pad2d(x, pads, self.pad_value) if any(pads) else x)

    def backward(self, grad_out):
        dx = super().backward(grad_out)
        return crop2d(dx, self.pads) if any(self.pads) else dx


class MaxPool2dSame(MaxPool2d):
    """MaxPool2d with TensorFlow's ``padding="same"``: pad with -inf (never wins), then a valid pool.

    OH = ceil(H / SH). Keras's ``MaxPooling2D(3, strides=2, padding="same")``.
    """

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride=stride, padding=0)
        self.pads = None

    def extra_repr(self):
        return super().extra_repr() + ", padding='same'"

    def forward(self, x):
        self.check_input(x, ndim=4)
        pads = same_pads(x.shape[2], x.shape[3], self.kernel_size, self.stride)
        self.pads = pads
        return super().forward(pad2d(x, pads, -xp_of(x).inf) if any(pads) else x)

    def backward(self, grad_out):
        dx = super().backward(grad_out)
        return crop2d(dx, self.pads) if any(self.pads) else dx


def same_conv(in_channels, out_channels, kernel_size, stride=1, bias=False):
    """A convolution with TensorFlow's "same" padding, the cheapest exact way.

    At stride 1 with an odd kernel "same" is (K - 1) / 2 on every side whatever the input
    size, i.e. Conv2d's own symmetric padding (no padded copy); otherwise ``Conv2dSame``.
    """
    KH, KW = _pair(kernel_size, "kernel_size")
    SH, SW = _pair(stride, "stride")
    if (SH, SW) == (1, 1) and KH % 2 == 1 and KW % 2 == 1:
        return Conv2d(in_channels, out_channels, (KH, KW), stride=1, padding=((KH - 1) // 2, (KW - 1) // 2),
                      bias=bias)
    return Conv2dSame(in_channels, out_channels, (KH, KW), stride=(SH, SW), bias=bias)
