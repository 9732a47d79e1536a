"""ReLU."""
from .module import Module, is_grad_enabled
from ..backend import xp_of


class ReLU(Module):
    """y = max(x, 0), elementwise. The gradient passes where x > 0 and is blocked elsewhere.

    ``inplace=True`` overwrites x with y instead of allocating a new array (as PyTorch's
    ``ReLU(inplace=True)``): safe only where nothing else still needs x, e.g. right after a
    batch norm, whose backward keeps xhat and not its output. The blocks use it there.
    The backward needs the mask x > 0, which is also y > 0: the layer keeps y (which the
    next layer keeps anyway) instead of a separate mask. ``relu_forward`` /
    ``relu_backward`` in ``reference.py`` are the plain version.
    """

    def __init__(self, inplace=False):
        self.inplace = inplace
        self.cache = None

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""

    def forward(self, x):
        """x (any shape) -> same shape (and the same memory layout)."""
        self.check_input(x)
        xp = xp_of(x)
        y = xp.maximum(x, 0, out=x) if self.inplace else xp.maximum(x, 0)
        self.cache = y if is_grad_enabled() else None
        return y

    def backward(self, grad_out):
        if self.cache is None:
            raise RuntimeError(f"{self._describe()}: backward called without a forward (or under no_grad)")
        return grad_out * (self.cache > 0)
