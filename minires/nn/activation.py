"""ReLU."""
from .module import Module, is_grad_enabled
from ..backend import xp_of


class ReLU(Module):
    """y = max(x, 0), elementwise. The gradient passes where x > 0 and is blocked elsewhere."""

    def __init__(self):
        self.cache = None

    def forward(self, x):
        """x (any shape) -> same shape."""
        self.check_input(x)
        mask = x > 0
        self.cache = mask if is_grad_enabled() else None
        return xp_of(x).maximum(x, 0)

    def backward(self, grad_out):
        if self.cache is None:
            raise RuntimeError(f"{self._describe()}: backward called without a forward (or under no_grad)")
        return grad_out * self.cache
