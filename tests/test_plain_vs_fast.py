"""The fast path of each layer against its plain functions (the top of its file), forward and backward, float64.

Every fast path (chunked im2col, 1x1 convolutions without im2col, channel-major activations,
row-wise batch norm, running-max pooling, in-place ReLU) must give the plain version's numbers.
"""
import numpy as np
import pytest

from helpers import away_from_kinks, on
from minires import nn
from minires.backend import to_numpy
from minires.engine import conv as conv_module
from minires.nn.activation import relu_backward, relu_forward
from minires.nn.conv import conv_backward, conv_forward
from minires.nn.norm import batchnorm_backward, batchnorm_forward
from minires.nn.pool import maxpool_backward, maxpool_forward


def channel_major(x):
    """The same values as x (N, C, H, W), stored (C, N, H, W): how the fast layers store activations."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def assert_close(a, b):
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-11, atol=1e-12)


CONV_CONFIGS = [  # (C, O, kernel, stride, padding, groups, bias, (H, W))
    (4, 6, 3, 1, 1, 1, True, (7, 7)),
    (4, 8, 3, 2, 1, 2, False, (7, 6)),
    (6, 6, 3, 1, 1, 3, False, (5, 8)),          # grouped 3x3 (ResNeXt's)
    (8, 4, 1, 1, 0, 1, False, (5, 5)),          # 1x1: no im2col at all
    (8, 4, 1, 2, 0, 1, True, (7, 6)),           # 1x1 with stride (the projection shortcut)
    (4, 4, 1, 1, 0, 2, False, (4, 5)),          # grouped 1x1
    (3, 5, 7, 2, 3, 1, False, (11, 9)),         # the ResNet stem, small
    (4, 4, (3, 1), (2, 1), (1, 0), 2, True, (6, 5)),   # non-square kernel, stride and padding
    (2, 3, (2, 3), (1, 2), (0, 2), 1, True, (5, 4)),   # padding wider than the kernel needs
    (2, 3, 3, 1, 3, 1, False, (4, 4)),          # stride 1, padding >= kernel: col2im, not the flipped conv
    (3, 4, (3, 2), 1, (1, 1), 1, False, (5, 6)),   # stride 1, non-square: the flipped conv
]


@pytest.mark.parametrize("C,O,k,s,p,g,bias,hw", CONV_CONFIGS)
@pytest.mark.parametrize("chunk_bytes", [1, None])   # 1 byte: one image per chunk; None: the default
@pytest.mark.parametrize("layout", ["nchw", "channel-major"])
def test_conv_matches_reference(C, O, k, s, p, g, bias, hw, chunk_bytes, layout, rng, device, monkeypatch):
    if chunk_bytes is not None:
        monkeypatch.setattr(conv_module, "CHUNK_BYTES", chunk_bytes)
        monkeypatch.setattr(conv_module, "CHUNK_COLUMNS", 1)
    conv = nn.Conv2d(C, O, k, stride=s, padding=p, groups=g, bias=bias).to(device, np.float64)
    x = rng.standard_normal((3, C) + hw)
    x = on(device, channel_major(x) if layout == "channel-major" else x)
    w, b = conv.weight.data, None if conv.bias is None else conv.bias.data
    y_ref, cache = conv_forward(x, w, b, conv.stride, conv.padding, g)
    y = conv(x)
    assert_close(y, y_ref)
    dy = on(device, rng.standard_normal(y.shape))
    dx_ref, dw_ref, db_ref = conv_backward(dy, cache)
    assert_close(conv.backward(dy), dx_ref)
    assert_close(conv.weight.grad, dw_ref)
    if bias:
        assert_close(conv.bias.grad, db_ref)


def test_conv_keeps_x_not_columns_and_one_layer_serves_two_inputs(rng):
    """What it keeps is x itself (backward recomputes the columns); forward twice, backward the last."""
    conv = nn.Conv2d(3, 4, 3, padding=1).to(dtype=np.float64)
    x1, x2 = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((2, 3, 5, 5))
    conv(x1)
    y = conv(x2)
    assert conv.saved[0] is x2
    dy = rng.standard_normal(y.shape)
    _, cache = conv_forward(x2, conv.weight.data, conv.bias.data, (1, 1), (1, 1))
    assert_close(conv.backward(dy), conv_backward(dy, cache)[0])


def test_two_convs_interleaved_share_workspaces_safely(rng):
    a = nn.Conv2d(3, 4, 3, padding=1).to(dtype=np.float64)
    b = nn.Conv2d(4, 2, 5, stride=2, padding=2).to(dtype=np.float64)
    x = rng.standard_normal((2, 3, 9, 9))
    ya = a(x)
    yb = b(ya)
    dyb = rng.standard_normal(yb.shape)
    dya = b.backward(dyb)
    dx = a.backward(dya)
    ya_ref, ca = conv_forward(x, a.weight.data, a.bias.data, (1, 1), (1, 1))
    yb_ref, cb = conv_forward(ya_ref, b.weight.data, b.bias.data, (2, 2), (2, 2))
    assert_close(yb, yb_ref)
    assert_close(dx, conv_backward(conv_backward(dyb, cb)[0], ca)[0])


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("layout", ["nchw", "channel-major"])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (1, 2, 3, 1)])
def test_batchnorm_matches_reference(inplace, train, layout, shape, rng, device):
    bn = nn.BatchNorm2d(shape[1], inplace=inplace).to(device, np.float64)
    bn.weight.data[...] = on(device, rng.uniform(0.5, 1.5, shape[1]))
    bn.bias.data[...] = on(device, rng.normal(0, 0.3, shape[1]))
    bn.running_mean[...] = on(device, rng.normal(0, 0.3, shape[1]))
    bn.running_var[...] = on(device, rng.uniform(0.5, 1.5, shape[1]))
    bn.train(train)
    x = rng.standard_normal(shape) * 2 + 1
    x_given = on(device, channel_major(x) if layout == "channel-major" else x)
    x = on(device, x.copy())  # its own memory on every backend (on the CPU, on() does not copy)
    old_mean, old_var = bn.running_mean.copy(), bn.running_var.copy()
    stats = (None, None) if train else (old_mean, old_var)
    y_ref, cache, (mean, var, _) = batchnorm_forward(x, bn.weight.data, bn.bias.data, bn.eps, *stats)
    y = bn(x_given)
    assert_close(y, y_ref)
    # a (1, C, H, W) array is channel-major too (swapping N and C moves nothing when N == 1)
    if inplace and (layout == "channel-major" or shape[0] == 1):
        assert_close(x_given, y_ref)            # the input's memory now holds the output
    else:                                       # untouched (an NCHW input is copied to channel-major first)
        assert_close(x_given, x)
    dy = on(device, rng.standard_normal(shape))
    dx_ref, dw_ref, db_ref = batchnorm_backward(dy, cache)
    assert_close(bn.backward(dy), dx_ref)
    assert_close(bn.weight.grad, dw_ref)
    assert_close(bn.bias.grad, db_ref)
    if train:
        M = shape[0] * shape[2] * shape[3]
        assert_close(bn.running_mean, 0.9 * old_mean + 0.1 * mean)
        assert_close(bn.running_var, 0.9 * old_var + 0.1 * var * M / (M - 1))


@pytest.mark.parametrize("inplace", [False, True])
def test_relu_matches_reference(inplace, rng, device):
    x = on(device, away_from_kinks(rng, (2, 3, 4, 5)))
    y_ref, mask = relu_forward(x)
    relu = nn.ReLU(inplace=inplace)
    x_given = x.copy()
    y = relu(x_given)
    assert_close(y, y_ref)
    assert (y is x_given) == inplace            # in place: the input array now holds the output
    if not inplace:
        assert_close(x_given, x)
    dy = on(device, rng.standard_normal(x.shape))
    assert_close(relu.backward(dy), relu_backward(dy, mask))


@pytest.mark.parametrize("k,s,p,hw", [(3, 2, 1, (9, 8)), (2, 2, 0, (6, 6)), (3, 1, 1, (5, 4)), ((3, 2), (2, 1), (1, 1), (7, 5))])
@pytest.mark.parametrize("ties", [False, True])
def test_maxpool_matches_reference(k, s, p, hw, ties, rng, device):
    """With ``ties`` the inputs are small integers, so most windows have several maxima: the
    gradient must go to the first one (row-major), as argmax and PyTorch do."""
    shape = (2, 3) + hw
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    x = on(device, channel_major(x))
    pool = nn.MaxPool2d(k, s, p)
    y_ref, cache = maxpool_forward(x, pool.kernel_size, pool.stride, pool.padding)
    y = pool(x)
    assert_close(y, y_ref)
    dy = on(device, rng.standard_normal(y.shape))
    assert_close(pool.backward(dy), maxpool_backward(dy, cache))
