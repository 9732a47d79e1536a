"""ReLU, MaxPool2d, AdaptiveAvgPool2d, Linear, Flatten, CrossEntropyLoss."""
import numpy as np
import pytest

from helpers import away_from_kinks, on
from minires import nn
from minires.backend import to_numpy
from minires.teach.gradcheck import check_function, check_module


def naive_maxpool(x, k, s, p):
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    y = np.empty((N, C, OH, OW))
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    y[n, c, i, j] = xp[n, c, i * s:i * s + k, j * s:j * s + k].max()
    return y


@pytest.mark.parametrize("k,s,p,hw", [(2, 2, 0, (6, 5)), (3, 2, 1, (7, 6)), (3, 1, 1, (4, 5)), (3, 3, 0, (9, 7))])
def test_maxpool_forward_matches_naive(k, s, p, hw, rng, device):
    x = rng.standard_normal((2, 3) + hw)
    y = to_numpy(nn.MaxPool2d(k, s, p)(on(device, x)))
    np.testing.assert_array_equal(y, naive_maxpool(x, k, s, p))


def test_maxpool_negative_inputs_ignore_padding():
    """Padding is -inf: an all-negative window next to the border must not return 0."""
    x = -np.ones((1, 1, 3, 3))
    np.testing.assert_array_equal(nn.MaxPool2d(3, 2, 1)(x), -np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
@pytest.mark.parametrize("batch", [1, 5])
def test_maxpool_gradcheck(k, s, p, batch, rng, device, path):
    x = on(device, rng.permutation(batch * 2 * 7 * 6).reshape(batch, 2, 7, 6) * 0.1)  # distinct: no ties
    result = check_module(nn.MaxPool2d(k, s, p), x, eps=1e-4)
    assert result.ok, str(result)


def test_maxpool_tie_goes_to_first_like_pytorch():
    pool = nn.MaxPool2d(2).to(dtype=np.float64)
    x = np.ones((1, 1, 2, 2))
    pool(x)
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1))), [[[[1.0, 0.0], [0.0, 0.0]]]])


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (5, 2, 3, 3)])
def test_relu_gradcheck(shape, rng, device, path):
    result = check_module(nn.ReLU(), on(device, away_from_kinks(rng, shape)))
    assert result.ok, str(result)


def test_relu_values():
    np.testing.assert_array_equal(nn.ReLU()(np.array([[-1.0, 0.0, 2.0]])), [[0.0, 0.0, 2.0]])


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (5, 2, 1, 1)])
def test_global_avgpool(shape, rng, device, path):
    x = rng.standard_normal(shape)
    pool = nn.AdaptiveAvgPool2d((1, 1))
    np.testing.assert_allclose(to_numpy(pool(on(device, x))), x.mean(axis=(2, 3), keepdims=True))
    result = check_module(pool, on(device, x))
    assert result.ok, str(result)
    with pytest.raises(ValueError, match="only output_size=\\(1, 1\\)"):
        nn.AdaptiveAvgPool2d((2, 2))


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(batch, bias, rng, device):
    lin = nn.Linear(6, 4, bias=bias).to(device, np.float64)
    x = rng.standard_normal((batch, 6))
    w = to_numpy(lin.weight.data)
    expect = x @ w.T + (to_numpy(lin.bias.data) if bias else 0)
    np.testing.assert_allclose(to_numpy(lin(on(device, x))), expect)
    result = check_module(lin, on(device, x))
    assert result.ok, str(result)


def test_linear_bad_input():
    lin = nn.Linear(6, 4)
    with pytest.raises(ValueError, match="Linear.*rank 2.*got shape \\(2, 6, 1, 1\\)"):
        lin(np.zeros((2, 6, 1, 1), np.float32))
    with pytest.raises(ValueError, match="expected 6 features.*got 5"):
        lin(np.zeros((2, 5), np.float32))


def test_flatten_roundtrip(rng):
    f = nn.Flatten()
    x = rng.standard_normal((2, 3, 2, 2))
    y = f(x)
    assert y.shape == (2, 12)
    assert f.backward(y).shape == x.shape
    assert check_module(f, x).ok


def test_cross_entropy_value_and_stability(rng, device):
    logits = rng.standard_normal((5, 4))
    target = np.array([0, 3, 1, 1, 2])
    loss = nn.CrossEntropyLoss()
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expect = -np.mean(np.log(p[np.arange(5), target]))
    assert abs(float(loss(on(device, logits), on(device, target))) - expect) < 1e-12
    big = on(device, np.array([[1000.0, 0.0], [0.0, -1000.0]]))  # exp(1000) overflows; log-sum-exp does not
    value = float(loss(big, on(device, np.array([0, 1]))))
    assert np.isfinite(value) and abs(value - 500.0) < 1e-9


@pytest.mark.parametrize("batch", [1, 5])
def test_cross_entropy_gradcheck(batch, rng, device):
    loss = nn.CrossEntropyLoss()
    target = on(device, rng.integers(0, 4, batch))
    result = check_function(lambda z: loss.forward(z, target), loss.backward, on(device, rng.standard_normal((batch, 4))))
    assert result.ok, str(result)


def test_cross_entropy_bad_input():
    loss = nn.CrossEntropyLoss()
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(TypeError, match="integer array of class indices"):
        loss(z, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="shape \\(3,\\).*got \\(2,\\)"):
        loss(z, np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="lie in \\[0, 4\\).*to 4"):
        loss(z, np.array([0, 1, 4]))
