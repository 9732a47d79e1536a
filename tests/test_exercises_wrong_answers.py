"""minires.teach.exercises, the blind spots of issue 28: wrong answers written as a learner writes
them, each of which the checker must name (not pass, not answer with a generic formula or NumPy's
raw error)."""
import numpy as np
import pytest

import minires.teach.exercises as ex
from minires.nn import col2im, im2col


# ----------------------------------------------------------------------------- the learner's earlier answers
def relu_backward(x, dy):
    return dy * (x > 0)


def conv2d_backward(x, W, b, dy, stride=1, padding=0):
    N, C, H, Wd = x.shape
    O, _, KH, KW = W.shape
    OH, OW = dy.shape[2:]
    X_col = im2col(x.transpose(1, 0, 2, 3), KH, KW, stride, stride, padding, padding).reshape(C * KH * KW, -1)
    dY = dy.transpose(1, 0, 2, 3).reshape(O, N * OH * OW)
    dW = (dY @ X_col.T).reshape(W.shape)
    dX_col = W.reshape(O, -1).T @ dY
    dx = col2im(dX_col.reshape(C, KH, KW, N, OH, OW), H, Wd, stride, stride, padding, padding)
    return dx.transpose(1, 0, 2, 3), dW, None if b is None else dy.sum(axis=(0, 2, 3))


def batchnorm_backward(x, gamma, beta, dy, eps=1e-5):
    axes = (0, 2, 3)
    s = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    xhat = (x - x.mean(axis=axes, keepdims=True)) * s
    dxhat = dy * gamma.reshape(1, -1, 1, 1)
    dx = s * (dxhat - dxhat.mean(axis=axes, keepdims=True) - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))
    return dx, (dy * xhat).sum(axis=axes), dy.sum(axis=axes)


def test_the_learners_earlier_answers_pass():
    for name, fn in [("relu", relu_backward), ("conv2d", conv2d_backward), ("batchnorm", batchnorm_backward)]:
        assert ex.check(name, fn, verbose=False).ok, name


# ----------------------------------------------------------------------------- 1. grouped convolution
def test_grouped_conv_sliced_by_the_input_channels_groups_is_named():
    def grouped_conv2d_backward(x, W, dy, groups=4):
        C = x.shape[1]
        dx, dW = np.zeros_like(x), np.zeros_like(W)
        for g in range(groups):
            c = slice(g * C // groups, (g + 1) * C // groups)   # the input channels' groups, for dy and W too
            dx[:, c], dW[c], _ = conv2d_backward(x[:, c], W[c], None, dy[:, c], padding=1)
        return dx, dW
    r = ex.check_grouped_conv2d(grouped_conv2d_backward, verbose=False)
    assert r.status == "fail" and "groups=2" in r.report  # C = 4, O = 6: the slip no longer passes
    assert [h.split(":")[0] for h in r.hints] == ["dx", "dW"], r.hints
    assert all("you sliced dy and W by the input channels' groups" in h and "dy's groups are of the OUTPUT "
               "channels" in h for h in r.hints), r.hints


# ----------------------------------------------------------------------------- 2. a shape error, translated
def _projection_student(shortcut_stride=2, conv1_stride=2, by_hand=False):
    """A learner's projection_block_backward; the chosen stride slip in it."""
    def projection_block_backward(x, W1, gamma1, beta1, W2, gamma2, beta2, Ws, gammas, betas, dy):
        a1 = ex.conv2d(x, W1, stride=2, padding=1)
        b1 = ex.batchnorm(a1, gamma1, beta1)
        h = ex.relu(b1)
        a2 = ex.conv2d(h, W2, padding=1)
        a_s = ex.conv2d(x, Ws, stride=2)
        g = relu_backward(ex.batchnorm(a2, gamma2, beta2) + ex.batchnorm(a_s, gammas, betas), dy)
        da2, dgamma2, dbeta2 = batchnorm_backward(a2, gamma2, beta2, g)
        dh, dW2, _ = conv2d_backward(h, W2, None, da2, padding=1)
        da1, dgamma1, dbeta1 = batchnorm_backward(a1, gamma1, beta1, relu_backward(b1, dh))
        dx_main, dW1, _ = conv2d_backward(x, W1, None, da1, stride=conv1_stride, padding=1)
        da_s, dgammas, dbetas = batchnorm_backward(a_s, gammas, betas, g)
        if by_hand:  # a 1x1 convolution is a matrix product per pixel ... of the pixels it saw
            dx_short = np.einsum("nohw,oc->nchw", da_s, Ws[:, :, 0, 0])
            dWs = np.einsum("nohw,nchw->oc", da_s, x[:, :, ::2, ::2])[:, :, None, None]
        else:
            dx_short, dWs, _ = conv2d_backward(x, Ws, None, da_s, stride=shortcut_stride)
        return dx_main + dx_short, dW1, dgamma1, dbeta1, dW2, dgamma2, dbeta2, dWs, dgammas, dbetas
    return projection_block_backward


def test_projection_shortcut_backward_at_stride_1_is_translated_not_raw():
    r = ex.check_projection_block(_projection_student(shortcut_stride=1), verbose=False)
    assert r.status == "error" and "size 72 is different from 18" in r.report  # NumPy's words, then ours
    assert ("a shape mismatch: your function made 72 (N*H*W = 2*6*6: x's pixels) where 18 "
            "(N*OH*OW = 2*3*3: dy's pixels) was needed") in r.hints, r.hints
    assert "Check the stride of the shortcut's 1x1 convolution (stride 2, no padding) in your backward" in r.hints[1]

    r = ex.check_projection_block(_projection_student(by_hand=True), verbose=False)  # a broadcasting error
    assert "could not be broadcast" in r.report
    assert r.hints[0] == ("a shape mismatch: your function made shape (2, 3, 3, 3) where shape (2, 3, 6, 6) "
                          "(x's shape) was needed"), r.hints
    assert "the shortcut's 1x1 convolution" in r.hints[1]

    r = ex.check_projection_block(_projection_student(conv1_stride=1), verbose=False)  # conv1's slip
    assert "Check the stride of conv1's 3x3 convolution (stride 2, padding 1)" in r.hints[1], r.hints


def test_a_shape_error_the_exercise_does_not_know_still_names_both_shapes():
    def linear_backward(x, W, b, dy):
        return dy @ W.T, dy.T @ x, dy.sum(axis=0)  # (4, 5) @ (3, 5)
    r = ex.check_linear(linear_backward, verbose=False)
    assert r.status == "error" and len(r.hints) == 1 and r.hints[0].startswith("a shape mismatch: your function "
                                                                               "made 3 where 5 was needed"), r.hints


# ----------------------------------------------------------------------------- 3. batch norm over axis 0 only
AXIS0 = ("batch norm in a conv net averages over N, H and W per channel (axis=(0, 2, 3)), you averaged over "
         "axis 0 only")


def test_batchnorm_statistics_over_axis_0_only_is_named():
    def batchnorm_backward(x, gamma, beta, dy, eps=1e-5):  # BatchNorm1d's habit: statistics over the batch
        mu, var = x.mean(axis=0), x.var(axis=0)
        xhat = (x - mu) / np.sqrt(var + eps)
        dxhat = dy * gamma.reshape(1, -1, 1, 1)
        dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / np.sqrt(var + eps)
        return dx, (dy * xhat).sum(axis=(0, 2, 3)), dy.sum(axis=(0, 2, 3))
    r = ex.check_batchnorm(batchnorm_backward, verbose=False)
    assert [h.split(":")[0] for h in r.hints] == ["dx", "dgamma"], r.hints
    assert all(AXIS0 in h for h in r.hints), r.hints

    def all_on_axis_0(x, gamma, beta, dy, eps=1e-5):  # ... and dgamma, dbeta summed over it: shape (C, H, W)
        dx, _, _ = batchnorm_backward(x, gamma, beta, dy, eps)
        xhat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)
        return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)
    r = ex.check_batchnorm(all_on_axis_0, verbose=False)
    assert r.tensor == "dgamma" and "got (3, 2, 3)" in r.report and AXIS0 in r.hints[0], r.hints


# ----------------------------------------------------------------------------- 4. kinks only where there are some
def test_a_smooth_functions_failure_is_not_called_a_kink():
    def batchnorm_no_mean_term(x, gamma, beta, dy, eps=1e-5):
        axes = (0, 2, 3)
        s = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
        xhat = (x - x.mean(axis=axes, keepdims=True)) * s
        dxhat = dy * gamma.reshape(1, -1, 1, 1)
        return s * (dxhat - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)), (dy * xhat).sum(axis=axes), \
            dy.sum(axis=axes)
    table = str(ex.check_batchnorm(batchnorm_no_mean_term, verbose=False).gradcheck)
    assert "a kink?" not in table and "a smooth function, no kink: the gradient is wrong" in table, table

    table = str(ex.check_relu(lambda x, dy: 1.1 * dy * (x > 0), verbose=False).gradcheck)  # ReLU has a kink ...
    assert "a kink?" not in table and "no kink within the step: the gradient is wrong" in table, table


@pytest.mark.parametrize("name", sorted(ex.EXERCISES))
def test_every_exercise_says_whether_it_has_kinks(name):
    """Without smooth=True or kinks, a failing row would fall back to "a kink?"."""
    spec = ex.EXERCISES[name]
    assert spec.get("smooth") != ("kinks" in spec), name
    if "kinks" in spec:
        inputs = spec["inputs"](np.random.default_rng(12))
        for case in spec["cases"]:
            assert spec["kinks"](*inputs, **case), name
