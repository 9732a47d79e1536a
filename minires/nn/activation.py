"""ReLU: y = max(x, 0).

Read from the top: ``relu_forward`` / ``relu_backward`` are the textbook layer. ``ReLU`` runs
them on the plain path (``with minires.nn.plain():``); its fast path saves memory, nothing else.
"""
from .module import Module, is_plain, may_overwrite
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
    its backward (``module.may_overwrite``). A batch norm keeps xhat, not its output, so the
    ReLU right after one overwrites it.
    """

    def __init__(self, inplace=False):
        self.inplace = inplace

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""

    def forward(self, x):
        """x (any shape) -> same shape: ``relu_forward`` on the plain path, else ``_forward_fast``."""
        self.check_input(x)
        if not is_plain():
            return self._forward_fast(x)
        y, mask = relu_forward(x)
        self.save_for_backward(mask)
        return y

    def backward(self, grad_out):
        """The path the forward took: ``relu_backward`` (plain) or ``_backward_fast``."""
        if is_plain():
            return relu_backward(grad_out, *self.saved)
        return self._backward_fast(grad_out)

    # ----- the fast path -----
    def _forward_fast(self, x):
        """``relu_forward``'s y, in place when allowed, and keeping y instead of a mask.

        The mask x > 0 is also y > 0, and y is kept anyway by the layer after (a convolution
        keeps its input), so keeping y costs no memory where a mask would cost a new array.
        The output has x's memory layout (channel-major stays channel-major).
        Plain twin: minires/nn/activation.py:relu_forward.
        """
        xp = xp_of(x)
        y = xp.maximum(x, 0, out=x) if self.inplace and may_overwrite(x) else xp.maximum(x, 0)
        self.save_for_backward(y)
        return y

    def _backward_fast(self, grad_out):
        """``relu_backward`` with the mask recomputed from the kept y.

        Plain twin: minires/nn/activation.py:relu_backward.
        """
        y, = self.saved
        return grad_out * (y > 0)
