"""Linear (fully connected) and Flatten."""
import math

from . import init
from .module import Module, Parameter


class Linear(Module):
    """x (N, in_features) -> y = x @ weight.T + bias, (N, out_features).

    weight (out_features, in_features), bias (out_features,), PyTorch's layout and init.
    """

    def __init__(self, in_features, out_features, bias=True):
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"Linear: {name} must be a positive int, got {v!r}")
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(init.uniform((out_features, in_features), bound))
        self.bias = Parameter(init.uniform((out_features,), bound)) if bias else None

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def forward(self, x):
        self.check_input(x, ndim=2, channels=self.in_features, what="input (N, in_features)")
        y = x @ self.weight.data.T
        if self.bias is not None:
            y = y + self.bias.data
        self.save_for_backward(x)
        return y

    def backward(self, grad_out):
        """grad_out (N, out) -> (N, in); adds dW = grad_out^T x and db = sum over the batch."""
        x, = self.saved
        self.weight.grad += grad_out.T @ x
        if self.bias is not None:
            self.bias.grad += grad_out.sum(axis=0)
        return grad_out @ self.weight.data


class Flatten(Module):
    """x (N, C, H, W) -> (N, C*H*W). Backward reshapes back."""

    def forward(self, x):
        self.check_input(x)
        self.save_for_backward(x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out):
        shape, = self.saved
        return grad_out.reshape(shape)
