"""What minires.exercises checks: the forwards, the test inputs, the right gradients, known mistakes.

Each exercise in EXERCISES is a dict:
    forward(*inputs, **case) -> y        what the learner differentiates (float64 NumPy)
    inputs(rng) -> [arrays]              small, seeded, away from ReLU's kink and max ties
    grads                                the names of the gradients, in the order returned
    cases                                keyword sets the backward is called with (stride, padding ...)
    reference(*inputs, dy, **case)       the right gradients, {name: array}, from minires.nn layers
    wrong(*inputs, dy, **case)           [(name, array, hint)]: common mistakes, computed, so that an
                                         answer equal to one of them gets that mistake's hint
    pattern(name, yours, right, *inputs, dy, **case)  optional: a hint from the shape of the error
    alone                                optional {name: hint} for when only that gradient is wrong
    general                              {name: hint} when a gradient is wrong in no known way
The right gradients come from the layers in minires.nn (an independent implementation of
the same maths), never from the forwards below, which are written for reading.
"""
import numpy as np

from . import nn
from .nn.activation import relu_forward
from .nn.conv import conv_forward
from .nn.norm import batchnorm_forward


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


def basic_block(x, W1, gamma1, beta1, W2, gamma2, beta2):
    """ResNet's basic block with an identity shortcut, x (N, C, H, W) -> (N, C, H, W)."""
    h = relu(batchnorm(conv2d(x, W1, padding=1), gamma1, beta1))
    return relu(batchnorm(conv2d(h, W2, padding=1), gamma2, beta2) + x)


# ----------------------------------------------------------------------------- inputs
def _away_from_zero(rng, shape, gap=0.1):
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + gap, x - gap)


def _bn_input(rng, shape):
    """Channels with their own offset and spread, as batch norm meets them."""
    C = shape[1]
    return rng.standard_normal(shape) * rng.uniform(0.5, 2.0, (1, C, 1, 1)) + rng.normal(0, 2, (1, C, 1, 1))


# ----------------------------------------------------------------------------- right gradients
def _layer(module, **params):
    """``module`` in float64 with its parameters set to ``params`` (attribute name -> array)."""
    module.to(dtype=np.float64)
    for name, value in params.items():
        p = getattr(module, name)
        p.data, p.grad = np.array(value, dtype=np.float64), np.zeros(np.shape(value))
    return module


def _conv_layer(W, b, stride, padding):
    O, C, K, _ = W.shape
    conv = nn.Conv2d(C, O, K, stride=stride, padding=padding, bias=b is not None)
    return _layer(conv, weight=W, **({} if b is None else {"bias": b}))


def _bn_layer(gamma, beta, eps=1e-5):
    bn = _layer(nn.BatchNorm2d(len(gamma), eps=eps), weight=gamma, bias=beta)
    return bn


def _grads(layer, x, dy):
    layer.forward(x)
    return layer.backward(dy)


def _relu_reference(x, dy):
    return {"dx": _grads(nn.ReLU(), x, dy)}


def _linear_reference(x, W, b, dy):
    m = _layer(nn.Linear(W.shape[1], W.shape[0]), weight=W, bias=b)
    dx = _grads(m, x, dy)
    return {"dx": dx, "dW": m.weight.grad, "db": m.bias.grad}


def _conv_reference(x, W, b, dy, stride=1, padding=0):
    m = _conv_layer(W, b, stride, padding)
    dx = _grads(m, x, dy)
    return {"dx": dx, "dW": m.weight.grad, "db": None if b is None else m.bias.grad}


def _bn_reference(x, gamma, beta, dy, eps=1e-5):
    m = _bn_layer(gamma, beta, eps)
    dx = _grads(m, x, dy)
    return {"dx": dx, "dgamma": m.weight.grad, "dbeta": m.bias.grad}


def _block_main(x, W1, gamma1, beta1, W2, gamma2, beta2, dz):
    """The main path's gradients (conv1 ... bn2) for an upstream dz at its output."""
    c1, b1, c2, b2 = _conv_layer(W1, None, 1, 1), _bn_layer(gamma1, beta1), _conv_layer(W2, None, 1, 1), \
        _bn_layer(gamma2, beta2)
    dx_main = _grads(nn.Sequential(c1, b1, nn.ReLU(), c2, b2), x, dz)
    return {"dx": dx_main, "dW1": c1.weight.grad, "dgamma1": b1.weight.grad, "dbeta1": b1.bias.grad,
            "dW2": c2.weight.grad, "dgamma2": b2.weight.grad, "dbeta2": b2.bias.grad}


def _block_reference(x, W1, gamma1, beta1, W2, gamma2, beta2, dy):
    dz = dy * (basic_block(x, W1, gamma1, beta1, W2, gamma2, beta2) > 0)  # through the final ReLU
    grads = _block_main(x, W1, gamma1, beta1, W2, gamma2, beta2, dz)
    grads["dx"] = grads["dx"] + dz  # main path + shortcut
    return grads


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


def _conv_wrong(x, W, b, dy, stride=1, padding=0):
    N, C, H, Wd = x.shape
    O, _, KH, KW = W.shape
    OH, OW = dy.shape[2:]
    dcol = (W.reshape(O, -1).T @ dy.transpose(1, 0, 2, 3).reshape(O, -1)).reshape(C, KH, KW, N, OH, OW)
    right = _conv_reference(x, W, b, dy, stride, padding)
    flipped = _conv_reference(x, W[:, :, ::-1, ::-1].copy(), b, dy, stride, padding)
    wrong = [("dx", _col2im_overwriting(dcol, H, Wd, stride, padding).transpose(1, 0, 2, 3),
              "right where windows do not overlap, wrong where they do: col2im must ADD the contributions "
              "of overlapping windows (+=, not =)"),
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
            ("dbeta", dy.mean(axis=(0, 2, 3)), "a sum of dy over N, H and W, not a mean")]


def _block_wrong(x, W1, gamma1, beta1, W2, gamma2, beta2, dy):
    params = (W1, gamma1, beta1, W2, gamma2, beta2)
    dz = dy * (basic_block(x, *params) > 0)
    main = _block_main(x, *params, dz)
    no_relu = _block_main(x, *params, dy)
    return [("dx", main["dx"], "only the main path's gradient: x also feeds the shortcut, so add the "
                               "shortcut's gradient (for an identity shortcut, the gradient after the final ReLU)"),
            ("dx", main["dx"] + dy, "the shortcut's gradient must also go through the final ReLU: add the "
                                    "masked gradient, not dy"),
            ("dx", no_relu["dx"] + dy, "every gradient is off: route dy through the final ReLU (mask: output > 0) "
                                       "before splitting into main path and shortcut"),
            ("dx", no_relu["dx"] + dz, "the main path must also get the gradient after the final ReLU, not dy"),
            ("dx", 2 * dz, "the shortcut plus the main path's backward (conv1 ... bn2), not the shortcut twice")]


# ----------------------------------------------------------------------------- patterns
def _relu_pattern(t, yours, right, x, dy):
    """Where is the answer wrong: only where x > 0, or only where x <= 0?"""
    bad = np.abs(yours - right) > 1e-6 * np.max(np.abs(right))
    if bad.any() and np.all(x[bad] > 0):
        return "wrong only where x > 0: there the gradient passes unchanged (dx = dy)"
    if bad.any() and np.all(x[bad] <= 0):
        return "wrong only where x <= 0: there ReLU passes no gradient (dx = 0)"
    return None


def _bn_pattern(t, yours, right, x, gamma, beta, dy, eps=1e-5):
    """Is dx off by a constant per channel (the mean term) or by a multiple of xhat per channel (the variance term)?"""
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


EXERCISES = {
    "relu": dict(forward=relu, grads=("dx",), cases=[{}],
                 inputs=lambda rng: [_away_from_zero(rng, (3, 4, 5))],
                 reference=_relu_reference, wrong=_relu_wrong, pattern=_relu_pattern,
                 general={"dx": "dx = dy where x > 0, and 0 elsewhere"}),
    "linear": dict(forward=linear, grads=("dx", "dW", "db"), cases=[{}],
                   inputs=lambda rng: [rng.standard_normal((4, 3)), rng.standard_normal((5, 3)),
                                       rng.standard_normal(5)],
                   reference=_linear_reference, wrong=_linear_wrong,
                   general={"dx": "y = x @ W.T, so dx = dy @ W (shape (N, IN))",
                            "dW": "y = x @ W.T, so dW = dy.T @ x (shape (OUT, IN))",
                            "db": "b is added to every row, so db = dy summed over the batch"}),
    "conv2d": dict(forward=conv2d, grads=("dx", "dW", "db"), cases=[dict(stride=1, padding=1),
                                                                    dict(stride=2, padding=1)],
                   inputs=lambda rng: [rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)) / 3,
                                       rng.standard_normal(4)],
                   reference=_conv_reference, wrong=_conv_wrong,
                   general={"dx": "Y_row = W_row @ X_col, so dX_col = W_row.T @ dY_row, then col2im back to "
                                  "(N, C, H, W); check the stride and padding you pass to col2im",
                            "dW": "dW_row = dY_row @ X_col.T, reshaped to (O, C, KH, KW)",
                            "db": "db = dy summed over axes (0, 2, 3)"}),
    "batchnorm": dict(forward=batchnorm, grads=("dx", "dgamma", "dbeta"), cases=[{}],
                      inputs=lambda rng: [_bn_input(rng, (4, 3, 2, 3)), 1 + 0.3 * rng.standard_normal(3),
                                          0.5 * rng.standard_normal(3)],
                      reference=_bn_reference, wrong=_bn_wrong, pattern=_bn_pattern,
                      alone={"dx": "dgamma and dbeta are right, so xhat and dy are right: look at the two terms "
                                   "the batch statistics add to dx"},
                      general={"dx": "dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), means "
                                     "over axes (0, 2, 3) per channel, with dxhat = gamma * dy",
                               "dgamma": "dgamma = sum of dy * xhat over axes (0, 2, 3)",
                               "dbeta": "dbeta = sum of dy over axes (0, 2, 3)"}),
    "basic_block": dict(forward=basic_block, grads=("dx", "dW1", "dgamma1", "dbeta1", "dW2", "dgamma2", "dbeta2"),
                        cases=[{}],
                        inputs=lambda rng: [rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((3, 3, 3, 3)) / 5,
                                            1 + 0.2 * rng.standard_normal(3), 0.2 * rng.standard_normal(3),
                                            rng.standard_normal((3, 3, 3, 3)) / 5, 1 + 0.2 * rng.standard_normal(3),
                                            0.2 * rng.standard_normal(3)],
                        reference=_block_reference, wrong=_block_wrong,
                        alone={"dx": "every parameter's gradient is right, so the main path is: look at the "
                                     "shortcut's gradient and the final sum"},
                        general={g: "go backwards through bn2, conv2, the inner ReLU, bn1, conv1 in turn, "
                                    "each with its own backward" for g in ("dW1", "dgamma1", "dbeta1", "dW2",
                                                                           "dgamma2", "dbeta2")}
                        | {"dx": "dx = (main path's backward of dz) + dz, where dz = dy * (output > 0)"}),
}
