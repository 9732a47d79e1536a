"""Dropout: the worked example of adding a layer (see CONTRIBUTING.md).

During training each value is zeroed with probability p and the survivors are scaled by
1 / (1 - p), so the expected output equals the input and evaluation needs no change: in eval
mode the layer is the identity. The backward lets the gradient through exactly where the
forward let the value through, with the same scale.

The mask is random, drawn from minires's one generator (``minires.nn.manual_seed``), so a
seed fixes it; the gradient checker restores the generator before each of its forwards
(``get_rng_state`` / ``set_rng_state``), so every re-run draws the same mask.
"""
from . import init
from .module import Module
from ..backend import xp_of


def dropout_forward(x, p, u):
    """x (any shape), p in [0, 1), u uniform [0, 1) of x's shape -> y, mask.

    mask = (u >= p) / (1 - p): 0 for a dropped value, 1/(1-p) for a kept one; y = x * mask.
    """
    mask = (u >= p).astype(x.dtype) / (1 - p)
    return x * mask, mask


def dropout_backward(dy, mask):
    """y = x * mask, so dx = dy * mask."""
    return dy * mask


class Dropout(Module):
    """Zero each value with probability ``p`` in training (scaling the rest by 1/(1-p)); identity in eval."""

    def __init__(self, p=0.5):
        if not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)

    def extra_repr(self):
        return f"p={self.p}"

    def forward(self, x):
        self.check_input(x)
        if not self.training or self.p == 0:
            self.save_for_backward(None)
            return x
        u = xp_of(x).asarray(init.generator().random(x.shape))   # drawn on the CPU, like the weights
        y, mask = dropout_forward(x, self.p, u)
        self.save_for_backward(mask)
        return y

    def backward(self, grad_out):
        mask, = self.saved
        return grad_out if mask is None else dropout_backward(grad_out, mask)
