"""ReLU: y = max(x, 0).

Read from the top: ``relu_forward`` / ``relu_backward`` are the textbook layer. ``ReLU`` runs
them on the plain path (``with minires.nn.plain():``); its fast path (minires/engine/activation.py)
saves memory, nothing else.
"""
from .module import Module
from . import switches
from ..backend import xp_of


def relu_forward(x):
    """y = max(x, 0); the cache is the mask x > 0."""
    return xp_of(x).maximum(x, 0), x > 0


def relu_backward(dy, mask):
    """The gradient passes where x > 0 and is blocked elsewhere."""
    return dy * mask


class ReLU(Module):
    """y = max(x, 0), elementwise. The gradient passes where x > 0 and is blocked elsewhere.

    ``inplace=True`` overwrites x with y instead of allocating a new array (as PyTorch's
    ``ReLU(inplace=True)``), on the fast path, where it is allowed: when no layer kept x for
    its backward (``engine/memory.py:may_overwrite``). A batch norm keeps xhat, not its output, so the
    ReLU right after one overwrites it.
    """

    def __init__(self, inplace=False):
        self.inplace = inplace

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""

    def forward(self, x):
        """x (any shape) -> same shape: ``relu_forward``, or the engine's fast path."""
        self.check_input(x)
        if self.fast and not switches.plain_path:
            return self.fast.forward(self, x)           # the engine: minires/engine/activation.py
        y, mask = relu_forward(x)
        self.save_for_backward(mask)
        return y

    def backward(self, grad_out):
        """The gradient passes where x > 0: ``relu_backward``, or the engine's fast path."""
        if self.fast and not switches.plain_path:
            return self.fast.backward(self, grad_out)   # the engine: minires/engine/activation.py
        return relu_backward(grad_out, *self.saved)
