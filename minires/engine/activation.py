"""The fast path of ReLU: in place where allowed, keeping y instead of a mask.

``forward(layer, x)`` and ``backward(layer, grad_out)`` are what ``ReLU`` hands the layer to
(engine/__init__.py registers them). Plain twins: minires/nn/activation.py.
"""
from ..backend import xp_of
from .memory import may_overwrite


def forward(layer, x):
    """``relu_forward``'s y, in place when allowed, and keeping y instead of a mask.

    The mask x > 0 is also y > 0, and y is kept anyway by the layer after (a convolution
    keeps its input), so keeping y costs no memory where a mask would cost a new array.
    The output has x's memory layout (channel-major stays channel-major).
    Plain twin: minires/nn/activation.py:relu_forward.
    """
    xp = xp_of(x)
    y = xp.maximum(x, 0, out=x) if layer.inplace and may_overwrite(x) else xp.maximum(x, 0)
    layer.save_for_backward(y)
    return y


def backward(layer, grad_out):
    """``relu_backward`` with the mask recomputed from the kept y.

    Plain twin: minires/nn/activation.py:relu_backward.
    """
    y, = layer.saved
    return grad_out * (y > 0)
