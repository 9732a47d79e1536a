"""The block exercises: basic_block (identity shortcut) and projection_block (the paper's
projection shortcut, stride 2), built from the layer forwards of exercises_layers.py.

For each: the forward, its test inputs, the right gradients (from the layers in minires.nn),
the common mistakes with their hints, and hints from which of the gradients are wrong. The
spec format is described in exercises_common.py; minires.teach.exercises checks against
these specs.
"""
from .. import nn
from .exercises_common import bn_layer, conv_layer, layer_dx
from .exercises_layers import batchnorm, conv2d, relu


# ----------------------------------------------------------------------------- forwards
def basic_block(x, W1, gamma1, beta1, W2, gamma2, beta2):
    """ResNet's basic block with an identity shortcut, x (N, C, H, W) -> (N, C, H, W)."""
    h = relu(batchnorm(conv2d(x, W1, padding=1), gamma1, beta1))
    return relu(batchnorm(conv2d(h, W2, padding=1), gamma2, beta2) + x)


def projection_block(x, W1, gamma1, beta1, W2, gamma2, beta2, Ws, gammas, betas):
    """A basic block that halves the size and changes the channels, x (N, C, H, W) -> (N, O, H/2, W/2):
    conv1 has stride 2, and the shortcut is the paper's "dashed" projection, a 1x1 convolution of
    stride 2 and its own batch norm (option B)."""
    h = relu(batchnorm(conv2d(x, W1, stride=2, padding=1), gamma1, beta1))
    main = batchnorm(conv2d(h, W2, padding=1), gamma2, beta2)
    shortcut = batchnorm(conv2d(x, Ws, stride=2), gammas, betas)
    return relu(main + shortcut)


# ----------------------------------------------------------------------------- kinks
def _block_kinks(x, W1, gamma1, beta1, W2, gamma2, beta2):
    """Where the basic block's kinks are: the signs of its two ReLUs' inputs."""
    b1 = batchnorm(conv2d(x, W1, padding=1), gamma1, beta1)
    out = batchnorm(conv2d(relu(b1), W2, padding=1), gamma2, beta2) + x
    return {"the inner ReLU": b1 > 0, "the final ReLU": out > 0}


def _projection_kinks(x, W1, gamma1, beta1, W2, gamma2, beta2, Ws, gammas, betas):
    """Where the projection block's kinks are: the signs of its two ReLUs' inputs."""
    b1 = batchnorm(conv2d(x, W1, stride=2, padding=1), gamma1, beta1)
    out = batchnorm(conv2d(relu(b1), W2, padding=1), gamma2, beta2) + batchnorm(conv2d(x, Ws, stride=2), gammas, betas)
    return {"the inner ReLU": b1 > 0, "the final ReLU": out > 0}


# ----------------------------------------------------------------------------- right gradients
def _block_main(x, W1, gamma1, beta1, W2, gamma2, beta2, dz):
    """The main path's gradients (conv1 ... bn2) for an upstream dz at its output."""
    c1, b1, c2, b2 = conv_layer(W1, None, 1, 1), bn_layer(gamma1, beta1), conv_layer(W2, None, 1, 1), \
        bn_layer(gamma2, beta2)
    dx_main = layer_dx(nn.Sequential(c1, b1, nn.ReLU(), c2, b2), x, dz)
    return {"dx": dx_main, "dW1": c1.weight.grad, "dgamma1": b1.weight.grad, "dbeta1": b1.bias.grad,
            "dW2": c2.weight.grad, "dgamma2": b2.weight.grad, "dbeta2": b2.bias.grad}


def _block_reference(x, W1, gamma1, beta1, W2, gamma2, beta2, dy):
    dz = dy * (basic_block(x, W1, gamma1, beta1, W2, gamma2, beta2) > 0)  # through the final ReLU
    grads = _block_main(x, W1, gamma1, beta1, W2, gamma2, beta2, dz)
    grads["dx"] = grads["dx"] + dz  # main path + shortcut
    return grads


def projection_parts(x, W1, gamma1, beta1, W2, gamma2, beta2, Ws, gammas, betas, dz):
    """The main path's and the shortcut's gradients for an upstream dz at their sum."""
    c1, b1, c2, b2 = conv_layer(W1, None, 2, 1), bn_layer(gamma1, beta1), conv_layer(W2, None, 1, 1), \
        bn_layer(gamma2, beta2)
    cs, bs = conv_layer(Ws, None, 2, 0), bn_layer(gammas, betas)
    dx_main = layer_dx(nn.Sequential(c1, b1, nn.ReLU(), c2, b2), x, dz)
    dx_short = layer_dx(nn.Sequential(cs, bs), x, dz)
    return {"dx_main": dx_main, "dx_short": dx_short, "dW1": c1.weight.grad, "dgamma1": b1.weight.grad,
            "dbeta1": b1.bias.grad, "dW2": c2.weight.grad, "dgamma2": b2.weight.grad, "dbeta2": b2.bias.grad,
            "dWs": cs.weight.grad, "dgammas": bs.weight.grad, "dbetas": bs.bias.grad}


def _projection_reference(*args):
    *params, dy = args
    g = projection_parts(*params, dy * (projection_block(*params) > 0))
    g["dx"] = g.pop("dx_main") + g.pop("dx_short")
    return g


# ----------------------------------------------------------------------------- known mistakes
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


def _projection_wrong(*args):
    *params, dy = args
    masked = projection_parts(*params, dy * (projection_block(*params) > 0))
    unmasked = projection_parts(*params, dy)
    out = [("dx", masked["dx_main"], "only the main path's gradient: x also feeds the projection shortcut (the "
                                     "1x1 convolution of stride 2); add the shortcut's dx"),
           ("dx", masked["dx_short"], "only the shortcut's gradient: add the main path's dx"),
           ("dx", unmasked["dx_main"] + unmasked["dx_short"], "route dy through the final ReLU (mask: output > 0) "
                                                              "before splitting into main path and shortcut")]
    for t in ("dWs", "dgammas", "dbetas", "dW1", "dgamma1", "dbeta1", "dW2", "dgamma2", "dbeta2"):
        out.append((t, unmasked[t], "this gradient skipped the final ReLU: both paths start from dy * (output > 0)"))
    return out


# ----------------------------------------------------------------------------- a shape error inside the backward
def _projection_shape_error(produced, expected, code, x, *params):
    """A step taken at stride 1 where the block's stride is 2: x's size (H, W; N*H*W pixels) met the
    output's (OH, OW; N*OH*OW) where they must agree. ``code``: the lines of the learner's code that ran."""
    N, _, H, W = x.shape
    OH, OW = (H - 1) // 2 + 1, (W - 1) // 2 + 1  # conv1 (3x3, padding 1) and conv_s (1x1) at stride 2
    sizes = {d[-2:] if isinstance(d, tuple) else d for d in (produced, expected)}
    if not (sizes & {N * H * W, H * W, (H, W)} and sizes & {N * OH * OW, OH * OW, (OH, OW)}):
        return None
    conv = "conv1's 3x3 convolution (stride 2, padding 1)" if "W1" in code and "Ws" not in code else \
        "the shortcut's 1x1 convolution (stride 2, no padding)"
    return (f"{H}x{W} (N*H*W = {N * H * W}) is x's size, {OH}x{OW} (N*OH*OW = {N * OH * OW}) the block's output's: "
            f"a step taken at stride 1 where the stride is 2. Check the stride of {conv} in your backward")


# ----------------------------------------------------------------------------- where the error is
def _block_where(t, wrong, first=("dW1", "dgamma1", "dbeta1"), second=("dW2", "dgamma2", "dbeta2")):
    """Layer 1 wrong while layer 2 is right: the error sits between them, and which of layer 1's
    gradients are wrong says where."""
    if t not in first or wrong & set(second):
        return None
    if wrong & set(first[1:]):
        return ("layer 2's gradients (dW2, dgamma2, dbeta2) are right, so the gradient that reaches conv2's "
                "output is right; layer 1's batch norm gets a wrong one. Look between them: conv2's input "
                "gradient (dh), and the inner ReLU, whose mask must come from ITS input (bn1's output)")
    return ("layer 2's gradients and bn1's dgamma1 and dbeta1 are right, so the gradient at bn1's output is "
            "right: look at bn1's input gradient (its dx) and at conv1's weight gradient")


EXERCISES = {
    "basic_block": dict(forward=basic_block, grads=("dx", "dW1", "dgamma1", "dbeta1", "dW2", "dgamma2", "dbeta2"),
                        cases=[{}],
                        inputs=lambda rng: [rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((3, 3, 3, 3)) / 5,
                                            1 + 0.2 * rng.standard_normal(3), 0.2 * rng.standard_normal(3),
                                            rng.standard_normal((3, 3, 3, 3)) / 5, 1 + 0.2 * rng.standard_normal(3),
                                            0.2 * rng.standard_normal(3)],
                        reference=_block_reference, wrong=_block_wrong, kinks=_block_kinks,
                        alone={"dx": "every parameter's gradient is right, so the main path is: look at the "
                                     "shortcut's gradient and the final sum"}, where=_block_where,
                        general={g: "go backwards through bn2, conv2, the inner ReLU, bn1, conv1 in turn, "
                                    "each with its own backward" for g in ("dW1", "dgamma1", "dbeta1", "dW2",
                                                                           "dgamma2", "dbeta2")}
                        | {"dx": "dx = (main path's backward of dz) + dz, where dz = dy * (output > 0)"}),
    "projection_block": dict(
        forward=projection_block, cases=[{}],
        grads=("dx", "dW1", "dgamma1", "dbeta1", "dW2", "dgamma2", "dbeta2", "dWs", "dgammas", "dbetas"),
        inputs=lambda rng: [rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)) / 5,
                            1 + 0.2 * rng.standard_normal(4), 0.2 * rng.standard_normal(4),
                            rng.standard_normal((4, 4, 3, 3)) / 5, 1 + 0.2 * rng.standard_normal(4),
                            0.2 * rng.standard_normal(4), rng.standard_normal((4, 3, 1, 1)) / 2,
                            1 + 0.2 * rng.standard_normal(4), 0.2 * rng.standard_normal(4)],
        reference=_projection_reference, wrong=_projection_wrong, where=_block_where, kinks=_projection_kinks,
        shape_error=_projection_shape_error,
        alone={"dx": "every parameter's gradient is right: look at how the two paths' dx are summed"},
        general={g: "go backwards through bn2, conv2, the inner ReLU, bn1, conv1 (stride 2, padding 1), each "
                    "with its own backward" for g in ("dW1", "dgamma1", "dbeta1", "dW2", "dgamma2", "dbeta2")}
        | {g: "the shortcut is conv_s (1x1, stride 2, no padding) then bn_s; its gradients start from "
              "dz = dy * (output > 0), like the main path's" for g in ("dWs", "dgammas", "dbetas")}
        | {"dx": "dx = (main path's backward of dz) + (shortcut's backward of dz), dz = dy * (output > 0)"}),
}
