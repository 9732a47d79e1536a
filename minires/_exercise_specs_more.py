"""The exercises added after the first five (see _exercise_specs.py for the format): max-pool's
backward with its ties, the block with a projection shortcut, the grouped convolution.

Kept apart so that each file stays short; minires.exercises merges the two EXERCISES dicts.
"""
import numpy as np

from . import nn
from ._exercise_specs import _block_where, _bn_layer, _conv_layer, _grads, _layer, batchnorm, conv2d, relu
from .nn.conv import conv_forward
from .nn.im2col import col2im
from .nn.pool import maxpool_forward


# ----------------------------------------------------------------------------- forwards
def maxpool(x, kernel_size=2, stride=2, padding=0):
    """x (N, C, H, W) -> (N, C, OH, OW), the largest value of each window, padding never winning:
    the library's ``maxpool_forward`` (minires/nn/pool.py:maxpool_forward)."""
    k, s, p = (kernel_size,) * 2, (stride,) * 2, (padding,) * 2
    return maxpool_forward(x, k, s, p)[0]


def projection_block(x, W1, gamma1, beta1, W2, gamma2, beta2, Ws, gammas, betas):
    """A basic block that halves the size and changes the channels, x (N, C, H, W) -> (N, O, H/2, W/2):
    conv1 has stride 2, and the shortcut is the paper's "dashed" projection, a 1x1 convolution of
    stride 2 and its own batch norm (option B)."""
    h = relu(batchnorm(conv2d(x, W1, stride=2, padding=1), gamma1, beta1))
    main = batchnorm(conv2d(h, W2, padding=1), gamma2, beta2)
    shortcut = batchnorm(conv2d(x, Ws, stride=2), gammas, betas)
    return relu(main + shortcut)


def grouped_conv2d(x, W, groups=4):
    """x (N, C, H, W), W (O, C/groups, 3, 3) -> (N, O, H, W): a 3x3 convolution of ``groups`` groups,
    stride 1, padding 1, no bias (ResNeXt's), the library's ``conv_forward``
    (minires/nn/conv.py:conv_forward)."""
    return conv_forward(x, W, None, (1, 1), (1, 1), groups)[0]


# ----------------------------------------------------------------------------- right gradients
def _maxpool_reference(x, dy, kernel_size=2, stride=2, padding=0):
    return {"dx": _grads(nn.MaxPool2d(kernel_size, stride, padding), x, dy)}


def _projection_parts(x, W1, gamma1, beta1, W2, gamma2, beta2, Ws, gammas, betas, dz):
    """The main path's and the shortcut's gradients for an upstream dz at their sum."""
    c1, b1, c2, b2 = _conv_layer(W1, None, 2, 1), _bn_layer(gamma1, beta1), _conv_layer(W2, None, 1, 1), \
        _bn_layer(gamma2, beta2)
    cs, bs = _conv_layer(Ws, None, 2, 0), _bn_layer(gammas, betas)
    dx_main = _grads(nn.Sequential(c1, b1, nn.ReLU(), c2, b2), x, dz)
    dx_short = _grads(nn.Sequential(cs, bs), x, dz)
    return {"dx_main": dx_main, "dx_short": dx_short, "dW1": c1.weight.grad, "dgamma1": b1.weight.grad,
            "dbeta1": b1.bias.grad, "dW2": c2.weight.grad, "dgamma2": b2.weight.grad, "dbeta2": b2.bias.grad,
            "dWs": cs.weight.grad, "dgammas": bs.weight.grad, "dbetas": bs.bias.grad}


def _projection_reference(*args):
    *params, dy = args
    g = _projection_parts(*params, dy * (projection_block(*params) > 0))
    g["dx"] = g.pop("dx_main") + g.pop("dx_short")
    return g


def _grouped_reference(x, W, dy, groups=4):
    conv = _layer(nn.Conv2d(x.shape[1], W.shape[0], 3, padding=1, groups=groups, bias=False), weight=W)
    dx = _grads(conv, x, dy)
    return {"dx": dx, "dW": conv.weight.grad}


# ----------------------------------------------------------------------------- known mistakes, rules
def _maxpool_wrong(x, dy, kernel_size=2, stride=2, padding=0):
    k, s, p = kernel_size, stride, padding
    cols = np.broadcast_to(dy.transpose(1, 0, 2, 3)[:, None, None], (x.shape[1], k, k) + dy.transpose(1, 0, 2, 3).shape[1:])
    everywhere = col2im(np.ascontiguousarray(cols), *x.shape[2:], s, s, p, p).transpose(1, 0, 2, 3)
    return [("dx", everywhere, "the gradient went to every position of the window: only the window's maximum "
                               "moved the output, so only it gets dy (0 elsewhere)")]


def _projection_wrong(*args):
    *params, dy = args
    masked = _projection_parts(*params, dy * (projection_block(*params) > 0))
    unmasked = _projection_parts(*params, dy)
    out = [("dx", masked["dx_main"], "only the main path's gradient: x also feeds the projection shortcut (the "
                                     "1x1 convolution of stride 2); add the shortcut's dx"),
           ("dx", masked["dx_short"], "only the shortcut's gradient: add the main path's dx"),
           ("dx", unmasked["dx_main"] + unmasked["dx_short"], "route dy through the final ReLU (mask: output > 0) "
                                                              "before splitting into main path and shortcut")]
    for t in ("dWs", "dgammas", "dbetas", "dW1", "dgamma1", "dbeta1", "dW2", "dgamma2", "dbeta2"):
        out.append((t, unmasked[t], "this gradient skipped the final ReLU: both paths start from dy * (output > 0)"))
    return out


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


def _grouped_wrong(x, W, dy, groups=4):
    C, O = x.shape[1], W.shape[0]
    right = _grouped_reference(x, W, dy, groups)
    shifted = np.zeros_like(x)  # group g's dx written into the channels of group g+1 (an off-by-one slice)
    for g in range(groups):
        h = (g + 1) % groups
        shifted[:, h * C // groups:(h + 1) * C // groups] = right["dx"][:, g * C // groups:(g + 1) * C // groups]
    return [("dx", shifted, "each group's dx is right but lands in another group's channels: group g's input "
                            "channels are g*C/G ... (g+1)*C/G - 1, the same slice the forward read")]


EXERCISES = {
    "maxpool": dict(forward=maxpool, grads=("dx",), cases=[dict(kernel_size=2, stride=2, padding=0),
                                                           dict(kernel_size=3, stride=2, padding=1)],
                    inputs=lambda rng: [rng.permutation(2 * 3 * 6 * 6).reshape(2, 3, 6, 6) / 10.0],  # no ties
                    reference=_maxpool_reference, wrong=_maxpool_wrong, rules=_maxpool_rules,
                    general={"dx": lambda case: "each window's dy goes to the position of the window's maximum "
                             "(0 elsewhere); padding never wins" + ("; where windows overlap (this case), "
                             "their gradients ADD" if case["kernel_size"] > case["stride"] else "")}),
    "projection_block": dict(
        forward=projection_block, cases=[{}],
        grads=("dx", "dW1", "dgamma1", "dbeta1", "dW2", "dgamma2", "dbeta2", "dWs", "dgammas", "dbetas"),
        inputs=lambda rng: [rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)) / 5,
                            1 + 0.2 * rng.standard_normal(4), 0.2 * rng.standard_normal(4),
                            rng.standard_normal((4, 4, 3, 3)) / 5, 1 + 0.2 * rng.standard_normal(4),
                            0.2 * rng.standard_normal(4), rng.standard_normal((4, 3, 1, 1)) / 2,
                            1 + 0.2 * rng.standard_normal(4), 0.2 * rng.standard_normal(4)],
        reference=_projection_reference, wrong=_projection_wrong, where=_block_where,
        alone={"dx": "every parameter's gradient is right: look at how the two paths' dx are summed"},
        general={g: "go backwards through bn2, conv2, the inner ReLU, bn1, conv1 (stride 2, padding 1), each "
                    "with its own backward" for g in ("dW1", "dgamma1", "dbeta1", "dW2", "dgamma2", "dbeta2")}
        | {g: "the shortcut is conv_s (1x1, stride 2, no padding) then bn_s; its gradients start from "
              "dz = dy * (output > 0), like the main path's" for g in ("dWs", "dgammas", "dbetas")}
        | {"dx": "dx = (main path's backward of dz) + (shortcut's backward of dz), dz = dy * (output > 0)"}),
    "grouped_conv2d": dict(forward=grouped_conv2d, grads=("dx", "dW"), cases=[dict(groups=4)],
                           inputs=lambda rng: [rng.standard_normal((2, 8, 5, 5)), rng.standard_normal((8, 2, 3, 3)) / 3],
                           reference=_grouped_reference, wrong=_grouped_wrong,
                           general={"dx": "group g is an ordinary convolution: input channels g*C/G ... (g+1)*C/G - 1, "
                                          "filters g*O/G ... (g+1)*O/G - 1 and the same channels of dy; dx is the "
                                          "G groups' dx side by side along the channels",
                                    "dW": "dW[filters of group g] = that group's ordinary dW: its slice of dy with "
                                          "its slice of x's channels"}),
}
