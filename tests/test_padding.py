"""TensorFlow's padding rules: same_padding, ZeroPad2d, Conv2dSame, MaxPool2dSame, against naive loops."""
import numpy as np
import pytest

from helpers import on
from minires import nn
from minires.backend import to_numpy
from minires.teach.gradcheck import check_module
from minires.nn.conv import Conv2dSame, same_conv
from minires.nn.pool import MaxPool2dSame
from minires.nn.padding import ZeroPad2d, crop2d, pad2d, resolve_padding, same_padding


def naive_same_windows(H, W, k, s):
    """For each output pixel of TensorFlow's "same": the in-bounds input rows/cols of its window.

    Straight from the definition: OH = ceil(H / s); total = max((OH-1)*s + k - H, 0); the window
    of output i starts at i*s - total//2; positions outside [0, H) are padding.
    """
    OH, OW = -(-H // s), -(-W // s)
    th = max((OH - 1) * s + k - H, 0) // 2
    tw = max((OW - 1) * s + k - W, 0) // 2
    for i in range(OH):
        for j in range(OW):
            rows = [(a, i * s - th + a) for a in range(k) if 0 <= i * s - th + a < H]
            cols = [(b, j * s - tw + b) for b in range(k) if 0 <= j * s - tw + b < W]
            yield i, j, rows, cols
    return OH, OW


def naive_conv_same(x, w, b, s):
    N, C, H, W = x.shape
    O, _, k, _ = w.shape
    OH, OW = -(-H // s), -(-W // s)
    y = np.zeros((N, O, OH, OW))
    for i, j, rows, cols in naive_same_windows(H, W, k, s):
        for a, r in rows:
            for bb, c in cols:
                y[:, :, i, j] += x[:, :, r, c] @ w[:, :, a, bb].T
    return y + (0 if b is None else b.reshape(1, O, 1, 1))


def naive_maxpool_same(x, k, s):
    N, C, H, W = x.shape
    y = np.full((N, C, -(-H // s), -(-W // s)), -np.inf)
    for i, j, rows, cols in naive_same_windows(H, W, k, s):
        for _, r in rows:
            for _, c in cols:
                y[:, :, i, j] = np.maximum(y[:, :, i, j], x[:, :, r, c])
    return y


@pytest.mark.parametrize("size,k,s,expected", [
    (224, 7, 2, (2, 3)),    # the ResNet stem: TensorFlow pads 2 before, 3 after (PyTorch: 3 and 3)
    (225, 7, 2, (3, 3)),
    (112, 3, 2, (0, 1)),    # the stem's max-pool: nothing before, one after
    (56, 1, 2, (0, 0)),     # a strided 1x1 never pads
    (10, 3, 1, (1, 1)),     # stride 1, odd kernel: symmetric, PyTorch's padding=1
    (10, 4, 1, (1, 2)),     # even kernel: the extra pixel after
    (1, 7, 2, (3, 3)),
    (7, 3, 3, (1, 1)),
    (8, 3, 3, (0, 1)),
])
def test_same_padding_values(size, k, s, expected):
    assert same_padding(size, k, s) == expected
    before, after = expected
    assert (size + before + after - k) // s + 1 == -(-size // s)   # the output is ceil(size / s)


@pytest.mark.parametrize("bad", [(0, 3, 1), (5, 0, 1), (5, 3, 0), (5.0, 3, 1)])
def test_same_padding_refuses_nonsense(bad):
    with pytest.raises(ValueError, match="same_padding"):
        same_padding(*bad)


def test_resolve_padding():
    assert resolve_padding("valid", "Conv2d") == (0, 0)
    assert resolve_padding("SAME", "Conv2d") == "same"
    assert resolve_padding(2, "Conv2d") == (2, 2)
    with pytest.raises(ValueError, match="Conv2d: padding must be"):
        resolve_padding("full", "Conv2d")
    with pytest.raises(ValueError, match="MaxPool2d: padding must be"):
        nn.MaxPool2d(3, 2, padding="full")
    assert "padding='same'" in repr(nn.Conv2d(3, 4, 3, stride=2, padding="same"))
    assert "padding='same'" in repr(nn.MaxPool2d(3, 2, padding="same"))


@pytest.mark.parametrize("plain", [False, True])
def test_conv_and_pool_take_padding_same_on_both_paths(plain, rng):
    """``Conv2d(padding="same")`` and ``MaxPool2d(padding="same")`` themselves, fast and plain paths."""
    x = rng.standard_normal((2, 3, 9, 8))
    conv = nn.Conv2d(3, 4, 3, stride=2, padding="same").to(dtype=np.float64)
    pool = nn.MaxPool2d(3, 2, padding="same")
    with nn.plain(plain):
        y, z = conv(x), pool(-np.abs(x))
        assert check_module(conv, x).ok and check_module(pool, rng.permutation(2 * 3 * 72).reshape(2, 3, 9, 8) * 0.1, eps=1e-4).ok
    np.testing.assert_allclose(y, naive_conv_same(x, conv.weight.data, conv.bias.data, 2), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(z, naive_maxpool_same(-np.abs(x), 3, 2))
    assert nn.Conv2d(3, 4, 3, padding="valid").padding == (0, 0)


@pytest.mark.parametrize("k,s,hw", [(7, 2, (11, 8)), (3, 2, (7, 6)), (3, 2, (6, 6)), (1, 2, (5, 4)),
                                    (4, 1, (5, 6)), (2, 2, (5, 5)), (3, 3, (8, 7)), (3, 1, (4, 5))])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_same_matches_naive(k, s, hw, bias, rng, device):
    conv = Conv2dSame(3, 4, k, stride=s, bias=bias).to(dtype=np.float64)
    x = rng.standard_normal((2, 3) + hw)
    y = to_numpy(conv.to(device)(on(device, x)))
    w = to_numpy(conv.weight.data)
    b = None if conv.bias is None else to_numpy(conv.bias.data)
    assert y.shape[2:] == (-(-hw[0] // s), -(-hw[1] // s))
    np.testing.assert_allclose(y, naive_conv_same(x, w, b, s), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,s,hw", [(3, 2, (7, 6)), (3, 2, (6, 6)), (2, 2, (5, 5)), (3, 1, (4, 5)), (4, 3, (9, 7))])
def test_maxpool_same_matches_naive(k, s, hw, rng, device):
    x = -np.abs(rng.standard_normal((2, 3) + hw))   # all negative: a zero-padded pool would be wrong
    y = to_numpy(MaxPool2dSame(k, s)(on(device, x)))
    np.testing.assert_array_equal(y, naive_maxpool_same(x, k, s))


@pytest.mark.parametrize("k,s,hw", [(7, 2, (9, 8)), (3, 2, (6, 7)), (4, 1, (5, 4)), (1, 2, (5, 5))])
def test_conv_same_gradcheck(k, s, hw, rng, device):
    conv = Conv2dSame(2, 3, k, stride=s).to(device)
    result = check_module(conv, on(device, rng.standard_normal((2, 2) + hw)))
    assert result.ok, str(result)


@pytest.mark.parametrize("k,s,hw", [(3, 2, (6, 7)), (3, 2, (7, 7)), (2, 2, (5, 4))])
def test_maxpool_same_gradcheck(k, s, hw, rng, device):
    x = on(device, rng.permutation(2 * 2 * hw[0] * hw[1]).reshape((2, 2) + hw) * 0.1 - 5)   # distinct, negative
    result = check_module(MaxPool2dSame(k, s), x, eps=1e-4)
    assert result.ok, str(result)


@pytest.mark.parametrize("padding", [1, (0, 1, 2, 3), (3, 3, 3, 3)])
def test_zeropad_values_and_gradcheck(padding, rng, device):
    x = rng.standard_normal((2, 3, 4, 5))
    pad = ZeroPad2d(padding)
    y = to_numpy(pad(on(device, x)))
    l, r, t, b = (padding,) * 4 if isinstance(padding, int) else padding
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (0, 0), (t, b), (l, r))))
    result = check_module(pad, on(device, x))
    assert result.ok, str(result)


def test_pad_and_crop_are_adjoint(rng):
    """<pad(x), g> == <x, crop(g)>: crop2d is the exact backward of pad2d."""
    x, pads = rng.standard_normal((2, 3, 4, 5)), (1, 2, 0, 3)
    g = rng.standard_normal((2, 3, 4 + 0 + 3, 5 + 1 + 2))
    np.testing.assert_allclose(np.sum(pad2d(x, pads) * g), np.sum(x * crop2d(g, pads)), rtol=1e-12)


@pytest.mark.parametrize("bad", [-1, (1, 2), (1, 2, 3, -1), 1.5])
def test_zeropad_refuses_bad_padding(bad):
    with pytest.raises(ValueError, match="ZeroPad2d: padding"):
        ZeroPad2d(bad)


def test_zeropad_backward_without_forward():
    with pytest.raises(RuntimeError, match="without a forward"):
        ZeroPad2d(1).backward(np.zeros((1, 1, 3, 3)))


def test_same_conv_is_symmetric_conv2d_at_stride_1(rng):
    """At stride 1 with an odd kernel "same" is Conv2d's own padding (K-1)/2: no padded copy needed."""
    plain = same_conv(3, 4, 3, stride=1)
    assert not plain.same and plain.padding == (1, 1)
    strided = same_conv(3, 4, 3, stride=2)
    assert strided.same and strided.padding == (0, 0)
    x = rng.standard_normal((1, 3, 6, 7))
    plain.to(dtype=np.float64)
    np.testing.assert_allclose(plain(x), naive_conv_same(x, plain.weight.data, None, 1), rtol=1e-12, atol=1e-12)


def test_stem_same_vs_symmetric_differs():
    """The point of all this: on 224, TensorFlow's 7x7/2 windows sit one pixel right of PyTorch's."""
    assert same_padding(224, 7, 2) == (2, 3)    # PyTorch's Conv2d(7, stride=2, padding=3): (3, 3)
