"""BatchNorm2d: per-channel normalisation with learned scale and shift (Ioffe & Szegedy, 2015)."""
import numpy as np

from .module import Module, Parameter, is_grad_enabled
from ..backend import xp_of


class BatchNorm2d(Module):
    """x (N, C, H, W) -> y = weight * (x - mean) / sqrt(var + eps) + bias, per channel.

    Training mode uses the batch's own mean and (biased) variance over N, H and W, and
    updates the running estimates; evaluation mode uses the running estimates. Exactly
    PyTorch's rules: running = (1 - momentum) * running + momentum * batch, where the
    variance stored is the *unbiased* one (divided by M - 1, M = N*H*W), and
    ``momentum=None`` means a cumulative average over the ``num_batches_tracked`` batches.
    """

    buffer_names = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        if not isinstance(num_features, int) or num_features <= 0:
            raise ValueError(f"BatchNorm2d: num_features must be a positive int, got {num_features!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=np.float32))
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32))
        self.running_mean = np.zeros(num_features, dtype=np.float32)
        self.running_var = np.ones(num_features, dtype=np.float32)
        self.num_batches_tracked = np.array(0, dtype=np.int64)
        self.cache = None

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x):
        """x (N, C, H, W) -> (N, C, H, W)."""
        self.check_input(x, ndim=4, channels=self.num_features)
        xp = xp_of(x)
        N, C, H, W = x.shape
        M = N * H * W  # values per channel
        if self.training:
            if M < 2:
                raise ValueError(f"{self._describe()}: training mode needs more than one value per channel "
                                 f"to estimate a variance, got input of shape {tuple(x.shape)}")
            mean = x.mean(axis=(0, 2, 3))
            xc = x - mean.reshape(1, C, 1, 1)
            var = (xc * xc).mean(axis=(0, 2, 3))  # biased: what normalises this batch
            self.num_batches_tracked += 1
            f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            # in place, so that arrays taken from state_dict() stay live
            self.running_mean *= 1 - f
            self.running_mean += f * mean
            self.running_var *= 1 - f
            self.running_var += f * var * (M / (M - 1))  # unbiased: an estimate of the population's
        else:
            var = self.running_var
            xc = x - self.running_mean.reshape(1, C, 1, 1)
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        xhat = xc * inv_std.reshape(1, C, 1, 1)
        y = self.weight.data.reshape(1, C, 1, 1) * xhat + self.bias.data.reshape(1, C, 1, 1)
        self.cache = (xhat, inv_std, self.training) if is_grad_enabled() else None
        return y

    def backward(self, grad_out):
        """grad_out (N, C, H, W) -> grad wrt x; adds into weight.grad and bias.grad."""
        if self.cache is None:
            raise RuntimeError(f"{self._describe()}: backward called without a forward (or under no_grad)")
        xhat, inv_std, used_batch_stats = self.cache
        C = self.num_features
        self.bias.grad += grad_out.sum(axis=(0, 2, 3))
        self.weight.grad += (grad_out * xhat).sum(axis=(0, 2, 3))
        dxhat = grad_out * self.weight.data.reshape(1, C, 1, 1)
        if not used_batch_stats:  # eval: mean and var are constants, the layer is affine in x
            return dxhat * inv_std.reshape(1, C, 1, 1)
        # Training: x also moves the batch mean and variance it is normalised by. Working
        # through d(mean)/dx = 1/M and d(var)/dx = 2(x - mean)/M gives
        #   dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        # (means over N, H, W): the two subtracted terms are what the batch statistics take back.
        mean_dxhat = dxhat.mean(axis=(0, 2, 3), keepdims=True)
        mean_dxhat_xhat = (dxhat * xhat).mean(axis=(0, 2, 3), keepdims=True)
        return inv_std.reshape(1, C, 1, 1) * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)
