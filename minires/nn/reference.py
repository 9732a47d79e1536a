"""The plain versions of the fast layers: the textbook algorithm, in as few lines as it takes.

Conv2d, BatchNorm2d, ReLU and MaxPool2d run fast paths that save memory traffic
(``memory.py`` says how). Each computes the same numbers as the plain function here, which
is the one to read first; the tests check every fast path against it, forward and backward,
in float64. Each pair is ``forward(...) -> (y, cache)`` and ``backward(dy, cache) -> grads``.
"""
from .im2col import col2im, im2col, out_size
from ..backend import xp_of


def conv_forward(x, w, b, stride, padding, groups=1):
    """x (N, C, H, W), w (O, C/G, KH, KW), b (O,) or None -> y (N, O, OH, OW), cache.

    im2col of the whole batch, then one matrix multiply per group.
    """
    xp = xp_of(x)
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    (SH, SW), (PH, PW), G = stride, padding, groups
    OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
    # Columns: one row per filter entry (c, i, j), one column per output pixel (n, oh, ow).
    col = im2col(x.transpose(1, 0, 2, 3), KH, KW, SH, SW, PH, PW)   # (C, KH, KW, N, OH, OW)
    col = col.reshape(G, C // G * KH * KW, N * OH * OW)              # one matrix per group
    y = xp.matmul(w.reshape(G, O // G, -1), col)                     # (G, O/G, N*OH*OW)
    y = y.reshape(O, N, OH, OW).transpose(1, 0, 2, 3)                # (N, O, OH, OW)
    if b is not None:
        y = y + b.reshape(1, O, 1, 1)
    return y, (col, w, (H, W), stride, padding)


def conv_backward(dy, cache):
    """dy (N, O, OH, OW) -> dx (N, C, H, W), dw (O, C/G, KH, KW), db (O,)."""
    xp = xp_of(dy)
    col, w, (H, W), (SH, SW), (PH, PW) = cache
    N, O, OH, OW = dy.shape
    G = col.shape[0]
    _, _, KH, KW = w.shape
    C = w.shape[1] * G
    dy_mat = dy.transpose(1, 0, 2, 3).reshape(G, O // G, N * OH * OW)
    db = dy.sum(axis=(0, 2, 3))
    # y = w @ col  =>  dw = dy @ col^T  and  dcol = w^T @ dy
    dw = xp.matmul(dy_mat, col.transpose(0, 2, 1)).reshape(w.shape)
    dcol = xp.matmul(w.reshape(G, O // G, -1).transpose(0, 2, 1), dy_mat)
    dcol = dcol.reshape(C, KH, KW, N, OH, OW)
    dx = col2im(dcol, H, W, SH, SW, PH, PW).transpose(1, 0, 2, 3)     # (N, C, H, W)
    return dx, dw, db


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
    """dy (N, C, H, W) -> dx, dweight, dbias."""
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


def relu_forward(x):
    """y = max(x, 0); the cache is the mask x > 0."""
    return xp_of(x).maximum(x, 0), x > 0


def relu_backward(dy, mask):
    return dy * mask


def maxpool_forward(x, kernel_size, stride, padding):
    """x (N, C, H, W) -> y (N, C, OH, OW), cache: im2col with -inf padding, then argmax."""
    xp = xp_of(x)
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = kernel_size, stride, padding
    OH, OW = out_size(H, KH, SH, PH), out_size(W, KW, SW, PW)
    col = im2col(x, KH, KW, SH, SW, PH, PW, pad_value=-xp.inf)       # (N, KH, KW, C, OH, OW)
    col = col.reshape(N, KH * KW, C, OH, OW)
    winner = col.argmax(axis=1)                                      # (N, C, OH, OW): first max
    y = xp.take_along_axis(col, winner[:, None], axis=1)[:, 0]
    return y, (winner, (H, W), kernel_size, stride, padding)


def maxpool_backward(dy, cache):
    """dy (N, C, OH, OW) -> dx (N, C, H, W): each window's gradient goes to its winner."""
    xp = xp_of(dy)
    winner, (H, W), (KH, KW), (SH, SW), (PH, PW) = cache
    N, C, OH, OW = dy.shape
    offsets = xp.arange(KH * KW).reshape(1, KH * KW, 1, 1, 1)
    dcol = (offsets == winner[:, None]) * dy[:, None]                # (N, KH*KW, C, OH, OW)
    dcol = dcol.astype(dy.dtype, copy=False).reshape(N, KH, KW, C, OH, OW)
    return col2im(dcol, H, W, SH, SW, PH, PW)
