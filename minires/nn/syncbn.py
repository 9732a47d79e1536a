"""SyncBatchNorm: batch normalisation over the global batch of all data-parallel ranks.

With data parallelism (``minires.distributed``) each rank normalises its own B images: the
statistics of a per-rank batch, not of the W*B images one step averages over. For most
layers that does not matter (they treat each image alone), but batch norm mixes the images
of a batch. SyncBatchNorm computes the mean and variance over all ranks' images, so W ranks
with B images each compute exactly what one process computes with W*B. It costs one small
all-reduce (2C + 1 numbers) in forward and one (2C) in backward, per layer.

The forward, for one channel, with M = the number of values over ALL ranks (N*H*W summed):

    mean = (1/M) sum_i x_i                    var = (1/M) sum_i x_i^2 - mean^2
    xhat_i = (x_i - mean) / sqrt(var + eps)   y_i = weight * xhat_i + bias

Each rank sums its own values (count, sum, sum of squares), one all-reduce adds the three
up, and every rank has the global mean and var. The sums are taken in float64 whatever the
input's dtype: ``E[x^2] - E[x]^2`` cancels catastrophically in float32 when |mean| >> std.

The backward, derived. Let g_i = dL/dy_i (each rank has those of its own values) and
a = weight / sqrt(var + eps). The loss depends on x_i directly and through mean and var, which
depend on every x_j of every rank:

    dL/dxhat_i = weight * g_i
    dL/dvar    = sum_j weight g_j (x_j - mean) * (-1/2) (var + eps)^(-3/2)
               = -(a / (2 (var + eps)^(1/2))) * sum_j g_j xhat_j
    dL/dmean   = -a sum_j g_j            (the var term's share is a multiple of sum_j (x_j - mean) = 0)
    dL/dx_i    = a g_i + dL/dvar * 2 (x_i - mean) / M + dL/dmean / M
               = a * (g_i - (1/M) sum_j g_j - xhat_i (1/M) sum_j g_j xhat_j)

The sums over j run over the global batch: they are the two per-channel gradient sums
``sum g`` (the bias gradient) and ``sum g xhat`` (the weight gradient) -- each rank computes
its share, and one all-reduce adds them. The parameter gradients themselves stay this rank's
shares: ``average_gradients`` after backward adds (and averages) them with all the others.
With one rank the formulas are BatchNorm2d's, and so are the numbers.

Every rank must call forward (and backward) of every SyncBatchNorm in the same order, in the
same mode: an all-reduce waits for all ranks. Evaluation mode uses the running statistics,
which are equal on every rank, and does not communicate.
"""
from .norm import BatchNorm2d
from ..backend import xp_of


class SyncBatchNorm(BatchNorm2d):
    """BatchNorm2d whose training statistics are over all ranks of ``minires.distributed.get_world()``.

    Same parameters, buffers and state_dict keys as BatchNorm2d (a checkpoint loads into
    either); the forward and backward are the plain formulas of the module docstring.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__(num_features, eps=eps, momentum=momentum)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x):
        """x (N, C, H, W) -> y (N, C, H, W); in training, statistics over every rank's batch."""
        from ..distributed import get_world
        self.check_input(x, ndim=4, channels=self.num_features)
        xp = xp_of(x)
        C = self.num_features
        shape = (1, C, 1, 1)
        if self.training:
            world = get_world()
            x64 = x.astype(xp.float64, copy=False)
            sums = xp.concatenate([x64.sum(axis=(0, 2, 3)), (x64 * x64).sum(axis=(0, 2, 3)),
                                   xp.array([x.size // C], dtype=xp.float64)])   # sum, sum of squares, count
            world.allreduce(sums)                                                  # over every rank
            M = float(sums[2 * C])
            if M < 2:
                raise ValueError(f"{self._describe()}: training mode needs more than one value per channel "
                                 f"over all ranks, got input of shape {tuple(x.shape)} on {world.size} rank(s)")
            mean64 = sums[:C] / M
            var64 = xp.maximum(sums[C:2 * C] / M - mean64 * mean64, 0.0)          # biased: what normalises
            self._update_running_stats(mean64, var64, M)
            mean, var = mean64.astype(x.dtype), var64.astype(x.dtype)
        else:
            mean, var, M = self.running_mean, self.running_var, None
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        y = self.weight.data.reshape(shape) * xhat + self.bias.data.reshape(shape)
        self.save_for_backward(xhat, inv_std, M)
        return y

    def _update_running_stats(self, mean, var, M):
        """PyTorch's rule (see BatchNorm2d), with the global mean, variance and count."""
        self.num_batches_tracked += 1
        f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        dtype = self.running_mean.dtype
        self.running_mean[...] = (1 - f) * self.running_mean + f * mean.astype(dtype)
        self.running_var[...] = (1 - f) * self.running_var + f * (var * (M / (M - 1))).astype(dtype)

    def backward(self, grad_out):
        """grad_out (N, C, H, W) -> grad wrt x; adds this rank's shares into weight.grad and bias.grad."""
        from ..distributed import get_world
        xhat, inv_std, M = self.saved
        xp = xp_of(grad_out)
        C = self.num_features
        shape = (1, C, 1, 1)
        sum_g = grad_out.sum(axis=(0, 2, 3))                   # this rank's share of sum g
        sum_g_xhat = (grad_out * xhat).sum(axis=(0, 2, 3))     # ... and of sum g * xhat
        self.bias.grad += sum_g
        self.weight.grad += sum_g_xhat
        a = (self.weight.data * inv_std).reshape(shape)
        if M is None:   # evaluation: mean and var are constants, the layer is affine in x
            return grad_out * a
        sums = xp.concatenate([sum_g, sum_g_xhat]).astype(xp.float64)
        get_world().allreduce(sums)                            # the global sums
        mean_g = (sums[:C] / M).astype(grad_out.dtype).reshape(shape)
        mean_g_xhat = (sums[C:] / M).astype(grad_out.dtype).reshape(shape)
        return a * (grad_out - mean_g - xhat * mean_g_xhat)


def convert_sync_batchnorm(model):
    """Replace every BatchNorm2d in ``model`` by a SyncBatchNorm holding the same Parameter objects
    and buffers (so an optimizer built before still updates them); returns ``model``.

    A model that is itself a BatchNorm2d is returned converted (a new object).
    """
    if isinstance(model, BatchNorm2d) and not isinstance(model, SyncBatchNorm):
        return _synced(model)
    for module in model.modules():
        for name, child in list(module.named_children()):
            if isinstance(child, BatchNorm2d) and not isinstance(child, SyncBatchNorm):
                setattr(module, name, _synced(child))
                object.__setattr__(getattr(module, name), "path", child.path)   # its full dotted name
    return model


def _synced(bn):
    sync = SyncBatchNorm(bn.num_features, eps=bn.eps, momentum=bn.momentum)
    sync.weight, sync.bias = bn.weight, bn.bias
    for name in bn.buffer_names:
        setattr(sync, name, getattr(bn, name))
    sync.training = bn.training
    return sync


__all__ = ["SyncBatchNorm", "convert_sync_batchnorm"]
