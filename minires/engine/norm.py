"""The fast path of BatchNorm2d: the textbook's numbers on the (C, N*H*W) matrix of a
channel-major activation (``memory.py``), one contiguous row per channel, so every statistic
is a row-wise reduction and every step one pass over the array.

``forward(layer, x)`` and ``backward(layer, grad_out)`` are what ``BatchNorm2d`` hands the
layer to (engine/__init__.py registers them). A layer holding one part of a split batch
(``layer.group``) combines its statistics through the same functions as the plain path
(minires/nn/norm.py: ``whole_batch_moments``, ``sum_over_parts``).
"""
from .memory import channel_major_matrix, from_channel_major_matrix, may_overwrite
from ..backend import xp_of
from ..nn.norm import sum_over_parts, whole_batch_moments
from ..nn import switches


def forward(layer, x):
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
    w, b = layer.weight.data[:, None], layer.bias.data[:, None]
    y = x2 if layer.inplace and may_overwrite(x2) else xp.empty_like(x2)   # where the output goes
    if not layer.training:
        # evaluation: an affine map per channel, y = x * scale + shift (two passes)
        inv_std = 1.0 / xp.sqrt(layer.running_var + layer.eps)
        scale = layer.weight.data * inv_std
        xhat = None
        if switches.grad_enabled:  # the weight's gradient needs xhat (computed before y may overwrite x)
            xhat = (x2 - layer.running_mean[:, None]) * inv_std[:, None]
        xp.multiply(x2, scale[:, None], out=y)
        y += (layer.bias.data - layer.running_mean * scale)[:, None]
    else:
        mean = x2.mean(axis=1)
        xhat = x2 - mean[:, None]                          # centred; normalised in place below
        var = row_dot(xhat, xhat) / M                      # biased: what normalises this batch
        if layer.group is not None:     # one part of the batch: the whole batch's statistics
            part_mean = mean
            mean, var, M = whole_batch_moments(layer.group, mean, var, M)
            xhat += (part_mean - mean)[:, None]            # x - m = (x - m_r) + (m_r - m)
        if layer.group is None or layer.group.updates_running:
            layer.update_running(mean, var, M)
        inv_std = 1.0 / xp.sqrt(var + layer.eps)
        xhat *= inv_std[:, None]
        xp.multiply(xhat, w, out=y)
        y += b
    shape = (N, C, H, W)
    layer.save_for_backward(None if xhat is None else from_channel_major_matrix(xhat, shape), inv_std,
                            layer.training)
    return from_channel_major_matrix(y, shape)


def backward(layer, grad_out):
    """``batchnorm_backward``'s numbers (its comments derive them): the same formula
    dx = weight * inv_std * (g - mean(g) - xhat * mean(g * xhat)) is computed with the
    per-channel sums first (sum(g) is the bias gradient, sum(g * xhat) the weight's),
    then four passes over the array. Plain twin: minires/nn/norm.py:batchnorm_backward.
    """
    xhat, inv_std, used_batch_stats = layer.saved
    N, C, H, W = grad_out.shape
    M = N * H * W
    g2, xhat2 = channel_major_matrix(grad_out), channel_major_matrix(xhat)     # (C, M) each
    dbias = g2.sum(axis=1)
    dweight = row_dot(g2, xhat2)
    layer.bias.grad += dbias
    layer.weight.grad += dweight
    a = (layer.weight.data * inv_std)[:, None]
    if not used_batch_stats:  # eval: mean and var are constants, the layer is affine in x
        return from_channel_major_matrix(g2 * a, grad_out.shape)
    if layer.group is not None:     # one part of the batch: the whole batch's sums
        dbias, dweight, M = sum_over_parts(layer.group, dbias, dweight, M)
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
