"""BatchNorm2d: per-channel normalisation with learned scale and shift (Ioffe & Szegedy, 2015).

Read from the top: ``batchnorm_forward`` / ``batchnorm_backward`` are the textbook layer, and
the backward's docstring derives the gradient. ``BatchNorm2d`` runs them on the plain path
(``with minires.nn.plain():``); its fast path (``_forward_fast``, ``_backward_fast``) computes
the same numbers on the (C, N*H*W) matrix of a channel-major activation (``memory.py``), one
contiguous row per channel, in the fewest passes over the array.
"""
import numpy as np

from .memory import channel_major_matrix, from_channel_major_matrix
from .module import Module, Parameter, is_grad_enabled, is_plain, may_overwrite
from .threads import combine_moments, replica_group, sum_over_replicas
from ..backend import xp_of


def batchnorm_forward(x, weight, bias, eps, mean=None, var=None):
    """x (N, C, H, W) -> y, cache. With ``mean``/``var`` None, the batch's own statistics
    (training); otherwise those (evaluation). Returns y, cache, and the batch (mean, var)."""
    xp = xp_of(x)
    C = x.shape[1]
    used_batch = mean is None
    if used_batch:
        mean = x.mean(axis=(0, 2, 3))
        var = ((x - mean.reshape(1, C, 1, 1)) ** 2).mean(axis=(0, 2, 3))  # biased
    inv_std = 1.0 / xp.sqrt(var + eps)
    xhat = (x - mean.reshape(1, C, 1, 1)) * inv_std.reshape(1, C, 1, 1)
    y = weight.reshape(1, C, 1, 1) * xhat + bias.reshape(1, C, 1, 1)
    return y, (xhat, inv_std, weight, used_batch), (mean, var)


def batchnorm_backward(dy, cache):
    """dy (N, C, H, W) -> dx, dweight, dbias.

    y = weight * xhat + bias, so dbias = sum(dy) and dweight = sum(dy * xhat) over N, H, W.
    """
    xhat, inv_std, weight, used_batch = cache
    C = xhat.shape[1]
    dbias = dy.sum(axis=(0, 2, 3))
    dweight = (dy * xhat).sum(axis=(0, 2, 3))
    dxhat = dy * weight.reshape(1, C, 1, 1)
    if not used_batch:  # evaluation: mean and var are constants, the layer is affine in x
        return dxhat * inv_std.reshape(1, C, 1, 1), dweight, dbias
    # Training: x also moves the batch mean and variance it is normalised by. Working
    # through d(mean)/dx = 1/M and d(var)/dx = 2(x - mean)/M gives
    #   dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    # (means over N, H, W): the two subtracted terms are what the batch statistics take back.
    mean_dxhat = dxhat.mean(axis=(0, 2, 3), keepdims=True)
    mean_dxhat_xhat = (dxhat * xhat).mean(axis=(0, 2, 3), keepdims=True)
    dx = inv_std.reshape(1, C, 1, 1) * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)
    return dx, dweight, dbias



class BatchNorm2d(Module):
    """x (N, C, H, W) -> y = weight * (x - mean) / sqrt(var + eps) + bias, per channel.

    Training mode uses the batch's own mean and (biased) variance over N, H and W, and
    updates the running estimates; evaluation mode uses the running estimates. Exactly
    PyTorch's rules: running = (1 - momentum) * running + momentum * batch, where the
    variance stored is the *unbiased* one (divided by M - 1, M = N*H*W), and
    ``momentum=None`` means a cumulative average over the ``num_batches_tracked`` batches.

    ``inplace=True`` writes the output over the input instead of allocating a new array (like
    ``ReLU(inplace=True)``), on the fast path, where it is allowed: when no layer kept the
    input for its backward (``module.may_overwrite``; a convolution keeps its input, not its
    output, so a batch norm right after one overwrites it). The backward is the same: it
    needs xhat, which the layer keeps.
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

    def extra_repr(self):
        s = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
        return s + (", inplace=True" if self.inplace else "")

    def forward(self, x):
        """x (N, C, H, W) -> (N, C, H, W): ``batchnorm_forward`` on the plain path, else ``_forward_fast``.

        Training uses the batch's statistics and updates the running ones; eval uses the running ones.
        """
        self.check_input(x, ndim=4, channels=self.num_features)
        N, C, H, W = x.shape
        if self.training and N * H * W < 2:
            raise ValueError(f"{self._describe()}: training mode needs more than one value per channel "
                             f"to estimate a variance, got input of shape {tuple(x.shape)}")
        if not is_plain():
            return self._forward_fast(x)
        w, b = self.weight.data, self.bias.data
        if self.training:
            y, cache, (mean, var) = batchnorm_forward(x, w, b, self.eps)
            self._update_running(mean, var, N * H * W)
        else:
            y, cache, _ = batchnorm_forward(x, w, b, self.eps, self.running_mean, self.running_var)
        self.save_for_backward(*cache)
        return y

    def _update_running(self, mean, var, M):
        """running = (1 - f) * running + f * batch, with f = momentum (or 1/n for momentum=None)."""
        # in place, so that arrays taken from state_dict() stay live
        count, running_mean, running_var = self.num_batches_tracked, self.running_mean, self.running_var
        count += 1
        f = self.momentum if self.momentum is not None else 1.0 / float(count)
        running_mean *= 1 - f
        running_mean += f * mean
        running_var *= 1 - f
        running_var += f * var * (M / (M - 1))  # unbiased: an estimate of the population's

    def backward(self, grad_out):
        """grad_out (N, C, H, W) -> grad wrt x; adds into weight.grad and bias.grad.

        The path the forward took: ``batchnorm_backward`` (plain) or ``_backward_fast``.
        """
        if is_plain():
            dx, dweight, dbias = batchnorm_backward(grad_out, self.saved)
            self.weight.grad += dweight
            self.bias.grad += dbias
            return dx
        return self._backward_fast(grad_out)

    # ----- the fast path -----
    def _forward_fast(self, x):
        """``batchnorm_forward``'s numbers, stored channel-major.

        Computed on the (C, N*H*W) matrix of the input (a view when the input is
        channel-major, see ``memory.py``): each channel is one contiguous row, so every
        statistic is a row-wise reduction and every step one pass over the array.
        Plain twin: minires/nn/norm.py:batchnorm_forward.
        """
        xp = xp_of(x)
        N, C, H, W = x.shape
        M = N * H * W  # values per channel
        x2 = channel_major_matrix(x)                           # (C, M)
        w, b = self.weight.data[:, None], self.bias.data[:, None]
        y = x2 if self.inplace and may_overwrite(x2) else xp.empty_like(x2)   # where the output goes
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
            mean = x2.mean(axis=1)
            xhat = x2 - mean[:, None]                          # centred; normalised in place below
            var = row_dot(xhat, xhat) / M                      # biased: what normalises this batch
            group, rank = replica_group()
            if group is not None:   # one part of the batch (threads.py:ThreadParallel): the whole batch's
                mean, var, M, shift = combine_moments(group, rank, mean, var, M)
                xhat += shift[:, None]                         # x - m = (x - m_r) + (m_r - m)
            if rank == 0:           # the running statistics are shared: one replica updates them
                self._update_running(mean, var, M)
            inv_std = 1.0 / xp.sqrt(var + self.eps)
            xhat *= inv_std[:, None]
            xp.multiply(xhat, w, out=y)
            y += b
        shape = (N, C, H, W)
        self.save_for_backward(None if xhat is None else from_channel_major_matrix(xhat, shape), inv_std,
                               self.training)
        return from_channel_major_matrix(y, shape)

    def _backward_fast(self, grad_out):
        """``batchnorm_backward``'s numbers (its docstring derives them): the same formula
        dx = weight * inv_std * (g - mean(g) - xhat * mean(g * xhat)) is computed with the
        per-channel sums first (sum(g) is the bias gradient, sum(g * xhat) the weight's),
        then four passes over the array. Plain twin: minires/nn/norm.py:batchnorm_backward.
        """
        xhat, inv_std, used_batch_stats = self.saved
        N, C, H, W = grad_out.shape
        M = N * H * W
        g2, xhat2 = channel_major_matrix(grad_out), channel_major_matrix(xhat)     # (C, M) each
        dbias = g2.sum(axis=1)
        dweight = row_dot(g2, xhat2)
        self.bias.grad += dbias
        self.weight.grad += dweight
        a = (self.weight.data * inv_std)[:, None]
        if not used_batch_stats:  # eval: mean and var are constants, the layer is affine in x
            return from_channel_major_matrix(g2 * a, grad_out.shape)
        group, rank = replica_group()
        if group is not None:     # one part of the batch (threads.py:ThreadParallel): the whole batch's sums
            dbias, dweight, M = sum_over_replicas(group, rank, dbias, dweight, M)
        dx = xhat2 * (dweight / M)[:, None]                    # xhat * mean(g * xhat)
        dx += (dbias / M)[:, None]                             # + mean(g)
        xp_of(dx).subtract(g2, dx, out=dx)                     # g - both: what the batch statistics take back
        dx *= a
        return from_channel_major_matrix(dx, grad_out.shape)


def row_dot(a, b):
    """(C, M), (C, M) -> (C,): the dot product of each row of a with the same row of b.

    One batched matrix multiply of (C, 1, M) by (C, M, 1): a single pass, no temporary,
    and BLAS accumulates more accurately than a naive float32 sum.
    """
    return xp_of(a, b).matmul(a[:, None, :], b[:, :, None])[:, 0, 0]
