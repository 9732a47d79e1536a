"""BatchNorm2d: per-channel normalisation with learned scale and shift (Ioffe & Szegedy, 2015)."""
import numpy as np

from .memory import cn_matrix, from_cn_matrix
from .module import Module, Parameter, is_grad_enabled
from ..backend import xp_of


class BatchNorm2d(Module):
    """x (N, C, H, W) -> y = weight * (x - mean) / sqrt(var + eps) + bias, per channel.

    Training mode uses the batch's own mean and (biased) variance over N, H and W, and
    updates the running estimates; evaluation mode uses the running estimates. Exactly
    PyTorch's rules: running = (1 - momentum) * running + momentum * batch, where the
    variance stored is the *unbiased* one (divided by M - 1, M = N*H*W), and
    ``momentum=None`` means a cumulative average over the ``num_batches_tracked`` batches.

    ``inplace=True`` writes the output over the input instead of allocating a new array (like
    ``ReLU(inplace=True)``): safe only where nothing else still needs the input, e.g. right
    after a convolution, whose backward keeps its own input, not its output. The blocks use
    it there. The backward is the same: it needs xhat, which the layer keeps.
    """

    buffer_names = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, inplace=False):
        if not isinstance(num_features, int) or num_features <= 0:
            raise ValueError(f"BatchNorm2d: num_features must be a positive int, got {num_features!r}")
        self.num_features, self.eps, self.momentum, self.inplace = num_features, eps, momentum, inplace
        self.weight = Parameter(np.ones(num_features, dtype=np.float32))
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32))
        self.running_mean = np.zeros(num_features, dtype=np.float32)
        self.running_var = np.ones(num_features, dtype=np.float32)
        self.num_batches_tracked = np.array(0, dtype=np.int64)
        self.cache = None

    def extra_repr(self):
        s = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
        return s + (", inplace=True" if self.inplace else "")

    def forward(self, x):
        """x (N, C, H, W) -> (N, C, H, W), stored channel-major.

        The same numbers as ``batchnorm_forward`` in ``reference.py``, computed on the
        (C, N*H*W) matrix of the input (a view when the input is channel-major, see
        ``memory.py``): each channel is one contiguous row, so every statistic is a
        row-wise reduction and every step one pass over the array.
        """
        self.check_input(x, ndim=4, channels=self.num_features)
        xp = xp_of(x)
        N, C, H, W = x.shape
        M = N * H * W  # values per channel
        x2 = cn_matrix(x)                                      # (C, M)
        w, b = self.weight.data[:, None], self.bias.data[:, None]
        y = x2 if self.inplace else xp.empty_like(x2)          # where the output goes
        if not self.training:
            # evaluation: an affine map per channel, y = x * scale + shift (two passes)
            inv_std = 1.0 / xp.sqrt(self.running_var + self.eps)
            scale = self.weight.data * inv_std
            xhat = None
            if is_grad_enabled():  # the weight's gradient needs xhat (computed before y may overwrite x)
                xhat = (x2 - self.running_mean[:, None]) * inv_std[:, None]
            xp.multiply(x2, scale[:, None], out=y)
            y += (self.bias.data - self.running_mean * scale)[:, None]
        else:
            if M < 2:
                raise ValueError(f"{self._describe()}: training mode needs more than one value per channel "
                                 f"to estimate a variance, got input of shape {tuple(x.shape)}")
            mean = x2.mean(axis=1)
            xhat = x2 - mean[:, None]                          # centred; normalised in place below
            var = row_dot(xhat, xhat) / M                      # biased: what normalises this batch
            self._update_running(mean, var, M)
            inv_std = 1.0 / xp.sqrt(var + self.eps)
            xhat *= inv_std[:, None]
            xp.multiply(xhat, w, out=y)
            y += b
        shape = (N, C, H, W)
        self.cache = (from_cn_matrix(xhat, shape), inv_std, self.training) if is_grad_enabled() else None
        return from_cn_matrix(y, shape)

    def _update_running(self, mean, var, M):
        self.num_batches_tracked += 1
        f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        # in place, so that arrays taken from state_dict() stay live
        self.running_mean *= 1 - f
        self.running_mean += f * mean
        self.running_var *= 1 - f
        self.running_var += f * var * (M / (M - 1))  # unbiased: an estimate of the population's

    def backward(self, grad_out):
        """grad_out (N, C, H, W) -> grad wrt x; adds into weight.grad and bias.grad.

        ``batchnorm_backward`` in ``reference.py`` derives it; here the same formula
        dx = weight * inv_std * (g - mean(g) - xhat * mean(g * xhat)) is computed with the
        per-channel sums first (sum(g) is the bias gradient, sum(g * xhat) the weight's),
        then four passes over the array.
        """
        if self.cache is None:
            raise RuntimeError(f"{self._describe()}: backward called without a forward (or under no_grad)")
        xhat, inv_std, used_batch_stats = self.cache
        N, C, H, W = grad_out.shape
        M = N * H * W
        g2, xhat2 = cn_matrix(grad_out), cn_matrix(xhat)     # (C, M) each
        dbias = g2.sum(axis=1)
        dweight = row_dot(g2, xhat2)
        self.bias.grad += dbias
        self.weight.grad += dweight
        a = (self.weight.data * inv_std)[:, None]
        if not used_batch_stats:  # eval: mean and var are constants, the layer is affine in x
            return from_cn_matrix(g2 * a, grad_out.shape)
        dx = xhat2 * (dweight / M)[:, None]                    # xhat * mean(g * xhat)
        dx += (dbias / M)[:, None]                             # + mean(g)
        xp_of(dx).subtract(g2, dx, out=dx)                     # g - both: what the batch statistics take back
        dx *= a
        return from_cn_matrix(dx, grad_out.shape)


def row_dot(a, b):
    """(C, M), (C, M) -> (C,): the dot product of each row of a with the same row of b.

    One batched matrix multiply of (C, 1, M) by (C, M, 1): a single pass, no temporary,
    and BLAS accumulates more accurately than a naive float32 sum.
    """
    return xp_of(a, b).matmul(a[:, None, :], b[:, :, None])[:, 0, 0]
