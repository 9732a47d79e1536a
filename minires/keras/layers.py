"""The Keras layers minires needs beyond its own: Keras's batch norm conventions and softmax.

``KerasBatchNorm2d``   BatchNorm2d with Keras's momentum convention and its biased running variance
``Softmax``            the classifier activation Keras models end in, with its backward
``named``              attaches the Keras layer name a module takes its weights from

Every module that holds weights carries ``keras_name``, the name of the Keras layer whose
weights it takes (``conv2_block1_1_conv``); ``minires.keras.weights`` loads by it.
"""
from ..nn import BatchNorm2d, Module
from ..nn.loss import softmax


def named(module, keras_name):
    """Attach the Keras layer name ``module`` takes its weights from; returns the module."""
    module.keras_name = keras_name
    return module


class KerasBatchNorm2d(BatchNorm2d):
    """BatchNorm2d with Keras's conventions (same forward, same backward).

    Momentum: Keras writes ``moving = moving * momentum + batch * (1 - momentum)``, PyTorch
    ``running = (1 - momentum) * running + momentum * batch``: Keras's 0.9 is PyTorch's 0.1,
    its default 0.99 is 0.01. ``keras_momentum`` is taken in Keras's convention; ``momentum``
    (PyTorch's) is 1 - keras_momentum. Running variance: Keras 3 averages the *biased* batch
    variance (divided by M), PyTorch the unbiased one (M - 1).
    Keras's default epsilon is 1e-3; keras.applications' ResNets use 1.001e-5.
    BatchNorm2d.update_running does the rest: for momenta of 0.5 and above, 1 - (1 - m) is m
    exactly in floating point, so PyTorch's formula with momentum 1 - m gives Keras's numbers.
    """

    unbiased_running_var = False     # Keras 3 averages the biased batch variance

    def __init__(self, num_features, eps=1e-3, keras_momentum=0.99, inplace=False):
        super().__init__(num_features, eps=eps, momentum=1.0 - keras_momentum, inplace=inplace)
        self.keras_momentum = keras_momentum

    def extra_repr(self):
        return super().extra_repr() + f" (Keras momentum={self.keras_momentum})"


class Softmax(Module):
    """logits (N, K) -> probabilities (N, K). Backward: dx = y * (g - sum(g * y)), row by row
    (the Jacobian of softmax is diag(y) - y y^T)."""

    def forward(self, x):
        self.check_input(x, ndim=2, what="logits (N, K)")
        y = softmax(x)
        self.save_for_backward(y)
        return y

    def backward(self, grad_out):
        (y,) = self.saved
        return y * (grad_out - (grad_out * y).sum(axis=1, keepdims=True))


def keras_bn(num_features, eps, name):
    """The seed's TensorFlow batch norm: BatchNormalization(momentum=0.9, epsilon=eps) (PyTorch's momentum 0.1)."""
    return named(KerasBatchNorm2d(num_features, eps, keras_momentum=0.9, inplace=True), name)

