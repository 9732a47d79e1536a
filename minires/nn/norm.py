"""BatchNorm2d: per-channel normalisation with learned scale and shift (Ioffe & Szegedy, 2015).

Read from the top: ``batchnorm_forward`` / ``batchnorm_backward`` are the textbook layer, and
the backward's comments derive the gradient. ``BatchNorm2d`` runs them on the plain path
(``with minires.nn.plain():``); its fast path (minires/engine/norm.py) computes the same
numbers on the (C, N*H*W) matrix of a channel-major activation, one contiguous row per
channel, in the fewest passes over the array.

One batch, several workers. Batch norm is the one layer that mixes the images of a batch.
When a batch is split into parts -- over threads (minires/parallel/threads.py) or over
processes (minires/parallel/syncbn.py) -- each part must still be normalised with the whole
batch's statistics. The layer learns that it holds one part through its ``group`` attribute
(None: the batch is whole), which the parallel code sets; a group offers two things:

    group.gather(value)       -> [every part's value], in part order, the same list on every part
    group.updates_running     -> whether this part updates the running statistics

and this file does the rest: ``combine_moments`` turns the parts' (count, mean, var) into the
whole batch's, ``sum_over_parts`` adds up the backward's two per-channel sums. nn/ never
imports the parallel code; the parallel code implements this protocol.
"""
import numpy as np

from .module import Module, Parameter
from . import switches
from ..backend import to_numpy, xp_of


def batchnorm_forward(x, weight, bias, eps, mean=None, var=None, group=None):
    """x (N, C, H, W) -> y, cache, (mean, var, count). With ``mean``/``var`` None, the batch's
    own statistics (training); otherwise those (evaluation). ``group``: x is one part of a batch
    split over workers (the module docstring), and the statistics are the whole batch's."""
    xp = xp_of(x)
    C = x.shape[1]
    count = x.size // C                       # values per channel: N * H * W
    used_batch = mean is None
    if used_batch:
        mean = x.mean(axis=(0, 2, 3))
        var = ((x - mean.reshape(1, C, 1, 1)) ** 2).mean(axis=(0, 2, 3))  # biased
        if group is not None:                 # one part of the batch: the whole batch's statistics
            mean, var, count = whole_batch_moments(group, mean, var, count)
    inv_std = 1.0 / xp.sqrt(var + eps)
    xhat = (x - mean.reshape(1, C, 1, 1)) * inv_std.reshape(1, C, 1, 1)
    y = weight.reshape(1, C, 1, 1) * xhat + bias.reshape(1, C, 1, 1)
    return y, (xhat, inv_std, weight, used_batch, group), (mean, var, count)


def batchnorm_backward(dy, cache):
    """dy (N, C, H, W) -> dx, dweight, dbias.

    y = weight * xhat + bias, so dbias = sum(dy) and dweight = sum(dy * xhat) over N, H, W.
    """
    xhat, inv_std, weight, used_batch, group = cache
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
    if group is None:
        mean_dxhat = dxhat.mean(axis=(0, 2, 3), keepdims=True)
        mean_dxhat_xhat = (dxhat * xhat).mean(axis=(0, 2, 3), keepdims=True)
    else:               # one part of the batch: the means are over every part's values
        sum_dy, sum_dy_xhat, M = sum_over_parts(group, dbias, dweight, xhat.size // C)
        mean_dxhat = (weight * sum_dy / M).reshape(1, C, 1, 1)             # dxhat = weight * dy
        mean_dxhat_xhat = (weight * sum_dy_xhat / M).reshape(1, C, 1, 1)
    dx = inv_std.reshape(1, C, 1, 1) * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)
    return dx, dweight, dbias


def combine_moments(parts):
    """[(count, mean, var), ...], one per part of a batch -> the whole batch's (mean, var, count).

    With n_r values in part r, of mean m_r and (biased) variance v_r, the whole batch has
    M = sum n_r values, mean m = sum n_r m_r / M, and variance
    v = sum n_r (v_r + (m_r - m)^2) / M: each part's spread about its own mean, plus how far
    its mean lies from the whole's (Chan, Golub and LeVeque, 1979). No E[x^2] - E[x]^2,
    which cancels in float32 when |mean| >> std. Computed in float64, in part order, so every
    part that combines the same list gets the same numbers, bit for bit.
    """
    M = sum(n for n, _, _ in parts)
    m = sum(n * m_r.astype(np.float64) for n, m_r, _ in parts) / M
    v = sum(n * (v_r.astype(np.float64) + (m_r.astype(np.float64) - m) ** 2) for n, m_r, v_r in parts) / M
    return m, v, M


def whole_batch_moments(group, mean, var, count):
    """This part's per-channel (mean, var) of ``count`` values -> the whole batch's, in their dtype."""
    m, v, M = combine_moments(group.gather((count, mean, var)))
    return m.astype(mean.dtype), v.astype(var.dtype), M


def sum_over_parts(group, *values):
    """Each value (a per-channel array, or a count) summed over every part, in part order."""
    parts = group.gather(values)
    totals = list(parts[0])
    for other in parts[1:]:
        totals = [t + v for t, v in zip(totals, other)]
    return totals


class BatchNorm2d(Module):
    """x (N, C, H, W) -> y = weight * (x - mean) / sqrt(var + eps) + bias, per channel.

    Training mode uses the batch's own mean and (biased) variance over N, H and W, and
    updates the running estimates; evaluation mode uses the running estimates. Exactly
    PyTorch's rules: running = (1 - momentum) * running + momentum * batch, where the
    variance stored is the *unbiased* one (divided by M - 1, M = N*H*W), and
    ``momentum=None`` means a cumulative average over the ``num_batches_tracked`` batches.

    ``inplace=True`` writes the output over the input instead of allocating a new array (like
    ``ReLU(inplace=True)``), on the fast path, where it is allowed: when no layer kept the
    input for its backward (``engine/memory.py:may_overwrite``; a convolution keeps its input, not its
    output, so a batch norm right after one overwrites it). The backward is the same: it
    needs xhat, which the layer keeps.

    ``group``: None, or the parts of a batch split over workers this layer's input is one of
    (the module docstring). Set by minires/parallel/, never by the layer.
    """

    buffer_names = ("running_mean", "running_var", "num_batches_tracked")
    group = None                  # None: the batch is whole (see the module docstring)
    unbiased_running_var = True   # PyTorch keeps the unbiased variance (M - 1); Keras the biased one

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
        s += ", inplace=True" if self.inplace else ""
        return s + (f", statistics over {self.group!r}" if self.group is not None else "")

    def forward(self, x):
        """x (N, C, H, W) -> (N, C, H, W): ``batchnorm_forward``, or the engine's fast path.

        Training uses the batch's statistics and updates the running ones; eval uses the running ones.
        """
        self.check_input(x, ndim=4, channels=self.num_features)
        N, C, H, W = x.shape
        if self.training and N * H * W < 2 and self.group is None:
            raise ValueError(f"{self._describe()}: training mode needs more than one value per channel "
                             f"to estimate a variance, got input of shape {tuple(x.shape)}")
        if self.fast and not switches.plain_path:
            return self.fast.forward(self, x)            # the engine: minires/engine/norm.py
        w, b = self.weight.data, self.bias.data
        if self.training:
            y, cache, (mean, var, M) = batchnorm_forward(x, w, b, self.eps, group=self.group)
            if self.group is None or self.group.updates_running:
                self.update_running(mean, var, M)
        else:
            y, cache, _ = batchnorm_forward(x, w, b, self.eps, self.running_mean, self.running_var)
        self.save_for_backward(*cache)
        return y

    def backward(self, grad_out):
        """grad_out (N, C, H, W) -> grad wrt x; adds into weight.grad and bias.grad."""
        if self.fast and not switches.plain_path:
            return self.fast.backward(self, grad_out)    # the engine: minires/engine/norm.py
        dx, dweight, dbias = batchnorm_backward(grad_out, self.saved)
        self.weight.grad += dweight
        self.bias.grad += dbias
        return dx

    # ----- the running statistics: one rule for every path, every flavour and every group -----
    def update_running(self, mean, var, M):
        """Fold one batch's mean and (biased) variance of M values per channel into the running ones.

        A statistic that is not finite is refused, with a FloatingPointError naming this layer,
        and nothing is written: NaN or infinity in a running statistic would stay there for good
        and make every evaluation NaN. Activations overflow when training diverges (a learning
        rate too high), and one NaN in an input spreads to every value of its batch's statistics.
        """
        if M < 2:
            raise ValueError(f"{self._describe()}: training mode needs more than one value per channel "
                             f"to estimate a variance; the whole batch has {M}")
        # running = (1 - f) * running + f * batch, with f = momentum (or 1/n for momentum=None: the
        # average of the n batches so far); the variance stored is unbiased (PyTorch) or the batch's own (Keras)
        f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
        new_mean = self.running_mean * (1 - f) + f * mean
        new_var = self.running_var * (1 - f) + (f * var * (M / (M - 1)) if self.unbiased_running_var else f * var)
        xp = xp_of(new_mean)
        if not bool(xp.isfinite(new_mean).all() & xp.isfinite(new_var).all()):   # one answer from the device
            raise FloatingPointError(f"{self._describe()}: this batch would make the running "
                                     f"{_not_finite(mean=new_mean, variance=new_var)}, so they keep their "
                                     "values (the activations overflowed: training diverged, or the input holds "
                                     "NaN or infinity)")
        self.running_mean[...] = new_mean       # in place, so that arrays taken from state_dict() stay live
        self.running_var[...] = new_var
        count = self.num_batches_tracked
        count += 1


def _not_finite(**statistics):
    """'variance inf in 12 of 16 channels', for each per-channel statistic that holds NaN or infinity."""
    said = []
    for name, value in statistics.items():
        bad = to_numpy(value)[~np.isfinite(to_numpy(value))]
        if bad.size:
            said.append(f"{name} {' or '.join(sorted(set(map(str, bad.tolist()))))} in {bad.size} of "
                        f"{value.size} channels")
    return " and the running ".join(said)
