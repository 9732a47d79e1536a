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

Conv2d and MaxPool2d take ``padding="same"`` / ``"valid"``; with "same" they pad explicitly
(``pad_same``), then run a *valid* convolution or pooling, and crop the gradient (``crop_same``):

    same_padding(size, k, s)      -> (before, after), TensorFlow's rule
    pad2d(x, pads, value)         -> x padded by (left, right, top, bottom) with ``value``
    crop2d(g, pads)               -> the adjoint of pad2d: the gradient of the padded border is dropped
    ZeroPad2d((l, r, t, b))       -> Keras's ZeroPadding2D / PyTorch's ZeroPad2d, as a Module

(``Conv2dSame`` and ``MaxPool2dSame``, timm's spelling of padding="same", are in conv.py and pool.py.)
This file is a leaf: the layers import it, it imports no layer.

Max-pool pads with -inf (a padded position never wins); a convolution with 0. The backward of
padding is a crop: a padded pixel is a constant, so its gradient goes nowhere.

Cost: one padded copy of the input per layer (the plain way; the fast path's copy is stored
channel-major, minires/engine/padding.py). Where "same" is symmetric
whatever the input size (stride 1, odd kernel) Conv2d uses its own symmetric padding instead,
which needs no copy (``symmetric_same``).
"""
from .module import Module
from . import switches
from ..backend import xp_of


def pair(v, name):
    """An int or a pair of ints -> a pair of ints (height, width)."""
    p = (v, v) if isinstance(v, int) else tuple(v)
    if len(p) != 2 or not all(isinstance(a, int) for a in p):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    return p


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


def resolve_padding(padding, name):
    """``padding`` as a layer accepts it -> "same", or a (PH, PW) pair ("valid" is (0, 0))."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0)
        if mode == "same":
            return "same"
        raise ValueError(f"{name}: padding must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
    return pair(padding, "padding")


def symmetric_same(padding, kernel_size, stride):
    """(same, padding) for Conv2d: "same" at stride 1 with an odd kernel is (K - 1) / 2 on each
    side whatever the input size, so it becomes ordinary symmetric padding (no padded copy)."""
    if padding != "same":
        return False, padding
    (KH, KW), (SH, SW) = kernel_size, stride
    if (SH, SW) == (1, 1) and KH % 2 == 1 and KW % 2 == 1:
        return False, ((KH - 1) // 2, (KW - 1) // 2)
    return True, (0, 0)


def pad_same(layer, x, value):
    """The forward half of "same" for a Conv2d or MaxPool2d: pad x by ``same_pads`` with ``value``
    (remembered on the layer for ``crop_same``); the layer then runs valid."""
    pads = same_pads(x.shape[2], x.shape[3], layer.kernel_size, layer.stride)
    vars(layer)["_same_pads"] = pads
    return pad2d(x, pads, value) if any(pads) else x


def crop_same(layer, dx):
    """The backward half: the gradient of the padded input -> the gradient of x."""
    pads = layer._same_pads
    return crop2d(dx, pads) if any(pads) else dx


def pad2d(x, pads, value=0.0):
    """x (N, C, H, W) -> (N, C, top + H + bottom, left + W + right), the border filled with ``value``.

    ``pads`` = (left, right, top, bottom).
    """
    left, right, top, bottom = pads
    xp = xp_of(x)
    N, C, H, W = x.shape
    out = xp.full((N, C, top + H + bottom, left + W + right), value, dtype=x.dtype)
    out[:, :, top:top + H, left:left + W] = x
    return out


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
        if self.fast and not switches.plain_path:
            return self.fast.forward(self, x)                # the engine: minires/engine/padding.py
        self.save_for_backward(x.shape)                 # nothing but the guard is needed
        return pad2d(x, self.padding, 0.0)

    def backward(self, grad_out):
        _ = self.saved                                  # raises if there was no forward
        return crop2d(grad_out, self.padding)
