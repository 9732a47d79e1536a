"""The single-layer exercises: relu, linear, conv2d, batchnorm, maxpool (with its ties) and
grouped_conv2d.

For each: the forward the learner differentiates, its test inputs, the right gradients (from
the layers in minires.nn), the common mistakes with their hints, and the patterns and rules
that explain a wrong answer. The spec format is described in exercises_common.py;
minires.teach.exercises checks against these specs, and exercises_blocks.py builds its
blocks from the forwards here.
"""
import numpy as np

from .. import nn
from ..nn.activation import relu_forward
from ..nn.conv import conv_forward
from ..nn.im2col import col2im, im2col
from ..nn.norm import batchnorm_forward
from ..nn.pool import maxpool_forward
from .exercises_common import bn_layer, conv_layer, float64_layer, layer_dx
from .gradcheck import relative_error


# ----------------------------------------------------------------------------- forwards
def relu(x):
    """max(x, 0), elementwise: the library's ``relu_forward`` (minires/nn/activation.py:relu_forward)."""
    return relu_forward(x)[0]


def linear(x, W, b):
    """x (N, IN), W (OUT, IN), b (OUT,) -> (N, OUT)."""
    return x @ W.T + b


def conv2d(x, W, b=None, stride=1, padding=0):
    """x (N, C, H, W), W (O, C, KH, KW), b (O,) or None -> (N, O, OH, OW): im2col, then one matmul,
    the library's textbook ``conv_forward`` (minires/nn/conv.py:conv_forward)."""
    return conv_forward(x, W, b, (stride, stride), (padding, padding))[0]


def batchnorm(x, gamma, beta, eps=1e-5):
    """Training-mode batch norm, x (N, C, H, W): each channel normalised by its batch mean and biased
    variance, the library's ``batchnorm_forward`` (minires/nn/norm.py:batchnorm_forward)."""
    return batchnorm_forward(x, gamma, beta, eps)[0]


def maxpool(x, kernel_size=2, stride=2, padding=0):
    """x (N, C, H, W) -> (N, C, OH, OW), the largest value of each window, padding never winning:
    the library's ``maxpool_forward`` (minires/nn/pool.py:maxpool_forward)."""
    k, s, p = (kernel_size,) * 2, (stride,) * 2, (padding,) * 2
    return maxpool_forward(x, k, s, p)[0]


def grouped_conv2d(x, W, groups=4):
    """x (N, C, H, W), W (O, C/groups, 3, 3) -> (N, O, H, W): a 3x3 convolution of ``groups`` groups,
    stride 1, padding 1, no bias (ResNeXt's), the library's ``conv_forward``
    (minires/nn/conv.py:conv_forward)."""
    return conv_forward(x, W, None, (1, 1), (1, 1), groups)[0]


# ----------------------------------------------------------------------------- inputs
def _away_from_zero(rng, shape, gap=0.1):
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + gap, x - gap)


def _bn_input(rng, shape):
    """Channels with their own offset and spread, as batch norm meets them."""
    C = shape[1]
    return rng.standard_normal(shape) * rng.uniform(0.5, 2.0, (1, C, 1, 1)) + rng.normal(0, 2, (1, C, 1, 1))


# ----------------------------------------------------------------------------- right gradients
def _relu_reference(x, dy):
    return {"dx": layer_dx(nn.ReLU(), x, dy)}


def _linear_reference(x, W, b, dy):
    m = float64_layer(nn.Linear(W.shape[1], W.shape[0]), weight=W, bias=b)
    dx = layer_dx(m, x, dy)
    return {"dx": dx, "dW": m.weight.grad, "db": m.bias.grad}


def _conv_reference(x, W, b, dy, stride=1, padding=0):
    m = conv_layer(W, b, stride, padding)
    dx = layer_dx(m, x, dy)
    return {"dx": dx, "dW": m.weight.grad, "db": None if b is None else m.bias.grad}


def _bn_reference(x, gamma, beta, dy, eps=1e-5):
    m = bn_layer(gamma, beta, eps)
    dx = layer_dx(m, x, dy)
    return {"dx": dx, "dgamma": m.weight.grad, "dbeta": m.bias.grad}


def _maxpool_reference(x, dy, kernel_size=2, stride=2, padding=0):
    return {"dx": layer_dx(nn.MaxPool2d(kernel_size, stride, padding), x, dy)}


def _grouped_reference(x, W, dy, groups=4):
    conv = float64_layer(nn.Conv2d(x.shape[1], W.shape[0], 3, padding=1, groups=groups, bias=False), weight=W)
    dx = layer_dx(conv, x, dy)
    return {"dx": dx, "dW": conv.weight.grad}


# ----------------------------------------------------------------------------- known mistakes
def _relu_wrong(x, dy):
    return [("dx", dy, "the gradient passes everywhere: ReLU blocks it where x <= 0 (multiply by the mask x > 0)"),
            ("dx", (x > 0) * 1.0, "that is the local derivative alone: the chain rule multiplies it by dy"),
            ("dx", dy * (x < 0), "the mask is the wrong way round: the gradient passes where x > 0"),
            ("dx", dy * (dy > 0), "the mask must come from the forward's input x, not from dy")]


def _linear_wrong(x, W, b, dy):
    N = x.shape[0]
    return [("db", dy.mean(axis=0), "the SUM of dy over the batch (every example adds its share), not the mean"),
            ("dW", dy.T @ x / N, "dW = dy.T @ x sums over the batch; no division by N")]


def _col2im_overwriting(col, H, W, S, P):
    """col2im with '=' instead of '+=': the classic bug (only the last window's share survives)."""
    A, KH, KW, B, OH, OW = col.shape
    img = np.zeros((A, B, H + 2 * P + S - 1, W + 2 * P + S - 1))
    for i in range(KH):
        for j in range(KW):
            img[:, :, i:i + S * OH:S, j:j + S * OW:S] = col[:, i, j]
    return img[:, :, P:H + P, P:W + P]


def right_dY(dy):
    """dy (N, O, OH, OW) -> dY (O, N*OH*OW), the layout of Y = W_row @ X_col."""
    return dy.transpose(1, 0, 2, 3).reshape(dy.shape[1], -1)


def W_swapped(dW):
    return dW.transpose(0, 1, 3, 2).copy()


def _conv_wrong(x, W, b, dy, stride=1, padding=0):
    N, C, H, Wd = x.shape
    O, _, KH, KW = W.shape
    OH, OW = dy.shape[2:]
    dcol = (W.reshape(O, -1).T @ dy.transpose(1, 0, 2, 3).reshape(O, -1)).reshape(C, KH, KW, N, OH, OW)
    right = _conv_reference(x, W, b, dy, stride, padding)
    flipped = _conv_reference(x, W[:, :, ::-1, ::-1].copy(), b, dy, stride, padding)
    X_col = im2col(x.transpose(1, 0, 2, 3), KH, KW, stride, stride, padding, padding).reshape(C * KH * KW, -1)
    dY_mixed = dy.reshape(O, -1)  # (N, O, OH, OW) reshaped as it is: columns mix images and channels
    dcol_mixed = (W.reshape(O, -1).T @ dY_mixed).reshape(C, KH, KW, N, OH, OW)
    mixed = ("dy was reshaped to (O, -1) straight from (N, O, OH, OW), which mixes images and channels: "
             "move O to the front first, dy.transpose(1, 0, 2, 3).reshape(O, -1), so that its columns are "
             "the output pixels (n, p, q) in X_col's order")
    wrong = [("dx", _col2im_overwriting(dcol, H, Wd, stride, padding).transpose(1, 0, 2, 3),
              "right where windows do not overlap, wrong where they do: col2im must ADD the contributions "
              "of overlapping windows (+=, not =)"),
             ("dW", (X_col @ right_dY(dy).T).reshape(W.shape),
              "that is X_col @ dY.T, dW_row TRANSPOSED (C*KH*KW, O), and the reshape to (O, C, KH, KW) hid it: "
              "dW_row = dY @ X_col.T"),
             ("dW", (dY_mixed @ X_col.T).reshape(W.shape), mixed),
             ("dW", (X_col @ dY_mixed.T).reshape(W.shape), "two mistakes: X_col @ dY.T is dW_row transposed "
              "(use dY @ X_col.T), and " + mixed),
             ("dW", W_swapped(right["dW"]), "the kernel's rows and columns are swapped (KH and KW): "
              "dW_row's columns are in X_col's row order (c, i, j)"),
             ("dx", col2im(dcol_mixed, H, Wd, stride, stride, padding, padding).transpose(1, 0, 2, 3), mixed),
             ("dx", flipped["dx"], "this is the backward of the kernel flipped in space: the forward is a "
                                   "cross-correlation; use W_row.T @ dY then col2im (or flip the kernel back)"),
             ("dW", right["dW"][:, :, ::-1, ::-1], "flipped in space: dW[o, c, i, j] pairs dy with the input at "
                                                   "offset (i, j) of each window, no flip")]
    if b is not None:
        wrong.append(("db", dy.mean(axis=(0, 2, 3)), "a sum of dy over the batch and the positions (axes 0, 2, 3), not a mean"))
        wrong.append(("db", dy.sum(axis=(2, 3)).sum(axis=0) / (OH * OW), "a sum over the positions too, no averaging"))
    return wrong


def _bn_wrong(x, gamma, beta, dy, eps=1e-5):
    C = x.shape[1]
    inv_std = 1.0 / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + eps)
    xhat = (x - x.mean(axis=(0, 2, 3), keepdims=True)) * inv_std
    dxhat = dy * gamma.reshape(1, C, 1, 1)
    mean_term = dxhat.mean(axis=(0, 2, 3), keepdims=True)
    var_term = xhat * (dxhat * xhat).mean(axis=(0, 2, 3), keepdims=True)
    dy_terms = dy.mean(axis=(0, 2, 3), keepdims=True), xhat * (dy * xhat).mean(axis=(0, 2, 3), keepdims=True)
    return [("dx", inv_std * (dxhat - var_term),
             "off by about the mean of dy (times gamma/std) in each channel: did you forget the mean term?"
             " The batch mean depends on every x, so each x also moves every output through it"),
            ("dx", inv_std * (dxhat - mean_term),
             "did you forget the variance term (- xhat * mean(dxhat * xhat))? The batch variance depends on x too"),
            ("dx", inv_std * dxhat,
             "you treated the mean and variance as constants: that is the eval-mode gradient; in training mode "
             "both depend on x and each adds a term"),
            ("dx", inv_std * (dy - dy_terms[0] - dy_terms[1]), "the factor gamma is missing (dxhat = gamma * dy)"),
            ("dgamma", (dy * x).sum(axis=(0, 2, 3)), "dy is multiplied by the NORMALISED xhat, not by x"),
            ("dgamma", (dy * xhat).mean(axis=(0, 2, 3)), "a sum over N, H and W, not a mean"),
            ("dbeta", dy.mean(axis=(0, 2, 3)), "a sum of dy over N, H and W, not a mean")] \
        + _bn_ddof1(x, gamma, dy, eps) + _bn_axis0(x, gamma, dy, eps)


DDOF1 = ("the unbiased variance (ddof=1, dividing by M - 1): training-mode batch norm normalises by the "
         "BIASED batch variance (divide by M = N*H*W, NumPy's default ddof=0); the unbiased one is only "
         "for the running variance. It scales xhat by about sqrt((M-1)/M)")


def _bn_ddof1(x, gamma, dy, eps):
    """The right formulas with x.var(ddof=1) everywhere the variance appears (a common slip)."""
    axes = (0, 2, 3)
    s = 1 / np.sqrt(x.var(axis=axes, ddof=1, keepdims=True) + eps)
    xhat = (x - x.mean(axis=axes, keepdims=True)) * s
    dxhat = dy * gamma.reshape(1, -1, 1, 1)
    dx = s * (dxhat - dxhat.mean(axis=axes, keepdims=True) - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))
    return [("dx", dx, DDOF1), ("dgamma", (dy * xhat).sum(axis=axes), DDOF1)]


AXIS0 = ("batch norm in a conv net averages over N, H and W per channel (axis=(0, 2, 3)), you averaged over "
         "axis 0 only (BatchNorm1d's habit), which gives every pixel (c, h, w) a mean and variance of its own")


def _bn_axis0(x, gamma, dy, eps):
    """The right formulas with BatchNorm1d's statistics, over axis 0 only (the backward's means over 0 or (0, 2, 3)),
    and its dgamma and dbeta summed over axis 0 only: (C, H, W), recognised by their shape."""
    s = 1 / np.sqrt(x.var(axis=0) + eps)
    xhat, dxhat = (x - x.mean(axis=0)) * s, dy * gamma.reshape(1, -1, 1, 1)
    means = [(dxhat.mean(axis=a, keepdims=True), (dxhat * xhat).mean(axis=a, keepdims=True)) for a in (0, (0, 2, 3))]
    return [("dx", s * (dxhat - m - xhat * v), AXIS0) for m, v in means] + [
        ("dgamma", (dy * xhat).sum(axis=(0, 2, 3)), AXIS0), ("dgamma", (dy * xhat).sum(axis=0), AXIS0),
        ("dbeta", dy.sum(axis=0), AXIS0)]


def _maxpool_wrong(x, dy, kernel_size=2, stride=2, padding=0):
    k, s, p = kernel_size, stride, padding
    cols = np.broadcast_to(dy.transpose(1, 0, 2, 3)[:, None, None], (x.shape[1], k, k) + dy.transpose(1, 0, 2, 3).shape[1:])
    everywhere = col2im(np.ascontiguousarray(cols), *x.shape[2:], s, s, p, p).transpose(1, 0, 2, 3)
    return [("dx", everywhere, "the gradient went to every position of the window: only the window's maximum "
                               "moved the output, so only it gets dy (0 elsewhere)")]


def _grouped_wrong(x, W, dy, groups=4):
    C, O = x.shape[1], W.shape[0]
    right = _grouped_reference(x, W, dy, groups)
    shifted = np.zeros_like(x)  # group g's dx written into the channels of group g+1 (an off-by-one slice)
    for g in range(groups):
        h = (g + 1) % groups
        shifted[:, h * C // groups:(h + 1) * C // groups] = right["dx"][:, g * C // groups:(g + 1) * C // groups]
    wrong = [("dx", shifted, "each group's dx is right but lands in another group's channels: group g's input "
                             "channels are g*C/G ... (g+1)*C/G - 1, the same slice the forward read")]
    if C < O:  # dy and W sliced like x, by C/G: a grouped convolution of W's first C filters and dy's first C channels
        by_input = _grouped_reference(x, W[:C], dy[:, :C], groups)
        hint = (f"you sliced dy and W by the input channels' groups (C/G = {C // groups} each); dy's groups are of "
                f"the OUTPUT channels: group g's filters and dy's channels are g*O/G ... (g+1)*O/G - 1 (O/G = "
                f"{O // groups}), its input channels g*C/G ... (g+1)*C/G - 1")
        wrong += [("dx", by_input["dx"], hint), ("dW", np.concatenate([by_input["dW"], 0 * W[C:]]), hint)]
    return wrong


# ----------------------------------------------------------------------------- patterns
def _relu_pattern(t, yours, right, x, dy):
    """Where is the answer wrong: only where x > 0, or only where x <= 0?"""
    bad = np.abs(yours - right) > 1e-6 * np.max(np.abs(right))
    if bad.any() and np.all(x[bad] > 0):
        return "wrong only where x > 0: there the gradient passes unchanged (dx = dy)"
    if bad.any() and np.all(x[bad] <= 0):
        return "wrong only where x <= 0: there ReLU passes no gradient (dx = 0)"
    return None


def _conv_pattern(t, yours, right, x, W, b, dy, stride=1, padding=0):
    """dx: at every pixel, is yours ONE window's contribution where the right answer is their SUM?

    That is a col2im (or a window-by-window loop) that assigns instead of adding, in any order.
    """
    if t != "dx":
        return None
    N, C, H, Wd = x.shape
    O, _, KH, KW = W.shape
    OH, OW = dy.shape[2:]
    dcol = (W.reshape(O, -1).T @ right_dY(dy)).reshape(C, KH, KW, N, OH, OW)
    match = np.zeros(yours.shape, dtype=bool)
    scale = 1e-6 * max(float(np.max(np.abs(right))), 1e-300)
    for i in range(KH):
        for j in range(KW):
            one = np.zeros_like(dcol)
            one[:, i, j] = dcol[:, i, j]  # the contribution of kernel offset (i, j): one window per pixel at most
            share = col2im(one, H, Wd, stride, stride, padding, padding).transpose(1, 0, 2, 3)
            match |= np.abs(yours - share) < scale
    if match.all() and not np.allclose(yours, right):
        return ("at every pixel your dx is the contribution of ONE window, where the right dx is the sum "
                "over all the windows that contain the pixel: an assignment (=) where you must add (+=), "
                "so the contributions of overlapping windows are lost")
    return None


def _bn_pattern(t, yours, right, x, gamma, beta, dy, eps=1e-5):
    """Is dx off by a constant per channel (the mean term) or by a multiple of xhat per channel (the variance term)?"""
    M = x.size // x.shape[1]
    k = float(np.sum(yours * right) / max(float(np.sum(right * right)), 1e-300))
    if relative_error(yours, k * right) < 1e-3 and any(abs(k - f) < 1e-3 * f for f in (
            np.sqrt((M - 1) / M), np.sqrt(M / (M - 1)), (M - 1) / M, M / (M - 1))):
        return f"scaled by {k:.4f}, about sqrt((M-1)/M) = {np.sqrt((M - 1) / M):.4f} for M = {M}: " + DDOF1
    if t != "dx":
        return None
    r = yours - right
    scale = np.max(np.abs(r))
    if np.max(np.abs(r - r.mean(axis=(0, 2, 3), keepdims=True))) < 1e-6 * scale:
        return ("off by a constant in each channel: look at the mean term, - mean(dxhat) over (N, H, W), "
                "which comes from the batch mean depending on x")
    xhat = (x - x.mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + eps)
    k = (r * xhat).sum(axis=(0, 2, 3), keepdims=True) / (xhat * xhat).sum(axis=(0, 2, 3), keepdims=True)
    if np.max(np.abs(r - k * xhat)) < 1e-6 * scale:
        return ("off by a multiple of xhat in each channel: look at the variance term, - xhat * mean(dxhat * xhat), "
                "which comes from the batch variance depending on x")
    return None


# ----------------------------------------------------------------------------- rules
def _maxpool_rules(fn, kernel_size=2, stride=2, padding=0):
    """With ties: each window's gradient must go, in total, to its maxima and add up to its dy.

    A gradient check uses inputs without ties (nudging a tied maximum changes which one wins, so
    the numerical gradient is meaningless there), so it cannot see what a backward does with
    them. This sends a 1 into one window at a time and looks at where it lands.
    """
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (1, 2, 6, 6)).astype(np.float64)  # small integers: many ties
    x[0, 0, :3, :3] = 1.0                                     # whole windows tied
    y = maxpool(x, kernel_size, stride, padding)
    pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=-np.inf)
    for idx in np.ndindex(y.shape):
        n, c, p, q = idx
        dy = np.zeros(y.shape)
        dy[idx] = 1.0
        try:
            dx = np.asarray(fn(x.copy(), dy, kernel_size=kernel_size, stride=stride, padding=padding), dtype=float)
        except Exception as e:  # noqa: BLE001 - reported, not raised
            return "dx", f"on an input with tied maxima your function raised {type(e).__name__}: {e}"
        window = np.zeros(pad.shape[2:], dtype=bool)
        window[p * stride:p * stride + kernel_size, q * stride:q * stride + kernel_size] = True
        is_max = window & (pad[n, c] == y[idx])
        where = f"window {list(idx)} (x = {pad[n, c][window].tolist()}, its maximum {y[idx]:g})"
        if abs(dx.sum() - 1.0) > 1e-9:
            return "dx", (f"a gradient check passes, but with ties the rule breaks: a 1 sent into {where} "
                          f"adds up to {dx.sum():g} in dx, not 1. Each window passes its dy on ONCE: route it to "
                          f"one of the tied maxima (minires and PyTorch take the first), not to each of them")
        dxp = np.pad(dx[n, c], padding)
        if np.any(dxp[~is_max]) or np.any(np.delete(dx, c, axis=1)) or np.any(np.delete(dx, n, axis=0)):
            return "dx", f"a 1 sent into {where} reached a position that is not one of that window's maxima"
    return None


EXERCISES = {
    "relu": dict(forward=relu, grads=("dx",), cases=[{}],
                 inputs=lambda rng: [_away_from_zero(rng, (3, 4, 5))], kinks=lambda x: {"ReLU": x > 0},
                 reference=_relu_reference, wrong=_relu_wrong, pattern=_relu_pattern,
                 general={"dx": "dx = dy where x > 0, and 0 elsewhere"}),
    "linear": dict(forward=linear, grads=("dx", "dW", "db"), cases=[{}],
                   inputs=lambda rng: [rng.standard_normal((4, 3)), rng.standard_normal((5, 3)),
                                       rng.standard_normal(5)],
                   reference=_linear_reference, wrong=_linear_wrong, smooth=True,
                   general={"dx": "y = x @ W.T, so dx = dy @ W (shape (N, IN))",
                            "dW": "y = x @ W.T, so dW = dy.T @ x (shape (OUT, IN))",
                            "db": "b is added to every row, so db = dy summed over the batch"}),
    "conv2d": dict(forward=conv2d, grads=("dx", "dW", "db"), cases=[dict(stride=1, padding=1),
                                                                    dict(stride=2, padding=1)],
                   inputs=lambda rng: [rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)) / 3,
                                       rng.standard_normal(4)],
                   reference=_conv_reference, wrong=_conv_wrong,
                   pattern=_conv_pattern, smooth=True,
                   general={"dx": lambda case: "Y_row = W_row @ X_col, so dX_col = W_row.T @ dY_row, then col2im "
                                  "back to (N, C, H, W)" + ("; the stride-1 case passes, so check the stride and "
                                                            "padding you pass to col2im" if case.get("stride", 1) > 1
                                                            else ""),
                            "dW": "dW_row = dY_row @ X_col.T, reshaped to (O, C, KH, KW)",
                            "db": "db = dy summed over axes (0, 2, 3)"}),
    "batchnorm": dict(forward=batchnorm, grads=("dx", "dgamma", "dbeta"), cases=[{}],
                      inputs=lambda rng: [_bn_input(rng, (4, 3, 2, 3)), 1 + 0.3 * rng.standard_normal(3),
                                          0.5 * rng.standard_normal(3)],
                      reference=_bn_reference, wrong=_bn_wrong, pattern=_bn_pattern, smooth=True,
                      alone={"dx": "dgamma and dbeta are right, so xhat and dy are right: look at the two terms "
                                   "the batch statistics add to dx"},
                      general={"dx": "dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), means "
                                     "over axes (0, 2, 3) per channel, with dxhat = gamma * dy",
                               "dgamma": "dgamma = sum of dy * xhat over axes (0, 2, 3)",
                               "dbeta": "dbeta = sum of dy over axes (0, 2, 3)"}),
    "maxpool": dict(forward=maxpool, grads=("dx",), cases=[dict(kernel_size=2, stride=2, padding=0),
                                                           dict(kernel_size=3, stride=2, padding=1)],
                    inputs=lambda rng: [rng.permutation(2 * 3 * 6 * 6).reshape(2, 3, 6, 6) / 10.0],  # no ties
                    reference=_maxpool_reference, wrong=_maxpool_wrong, rules=_maxpool_rules,
                    kinks=lambda x, kernel_size, stride, padding: {"max-pool": maxpool_forward(  # each window's winner
                        x, (kernel_size,) * 2, (stride,) * 2, (padding,) * 2)[1][0]},
                    general={"dx": lambda case: "each window's dy goes to the position of the window's maximum "
                             "(0 elsewhere); padding never wins" + ("; where windows overlap (this case), "
                             "their gradients ADD" if case["kernel_size"] > case["stride"] else "")}),
    "grouped_conv2d": dict(forward=grouped_conv2d, grads=("dx", "dW"), cases=[dict(groups=2)],  # C = 4 != O = 6
                           inputs=lambda rng: [rng.standard_normal((2, 4, 5, 5)), rng.standard_normal((6, 2, 3, 3)) / 3],
                           reference=_grouped_reference, wrong=_grouped_wrong, smooth=True,
                           general={"dx": "group g is an ordinary convolution: input channels g*C/G ... (g+1)*C/G - 1, "
                                          "filters g*O/G ... (g+1)*O/G - 1 and the same channels of dy; dx is the "
                                          "G groups' dx side by side along the channels",
                                    "dW": "dW[filters of group g] = that group's ordinary dW: its slice of dy with "
                                          "its slice of x's channels"}),
}
