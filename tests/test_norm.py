"""BatchNorm2d: PyTorch's exact statistics rules, gradient checks in train and eval, and the checker's teeth."""
import numpy as np
import pytest

from helpers import on
from minires import nn
from minires.backend import to_numpy
from minires.teach.gradcheck import check_module


def test_train_forward_normalises_per_channel(rng, device):
    bn = nn.BatchNorm2d(3).to(device, np.float64)
    x = rng.standard_normal((4, 3, 5, 6)) * np.array([1.0, 3.0, 0.2]).reshape(1, 3, 1, 1) + 7
    y = to_numpy(bn(on(device, x)))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)  # eps = 1e-5 keeps it just below 1


def test_running_statistics_follow_pytorch(rng):
    """running = (1 - m) running + m batch, with the UNBIASED variance; num_batches_tracked counts."""
    bn = nn.BatchNorm2d(2, momentum=0.3).to(dtype=np.float64)
    rm, rv = np.zeros(2), np.ones(2)
    for step in range(3):
        x = rng.standard_normal((3, 2, 4, 5)) + step
        bn(x)
        M = 3 * 4 * 5
        rm = 0.7 * rm + 0.3 * x.mean(axis=(0, 2, 3))
        rv = 0.7 * rv + 0.3 * x.var(axis=(0, 2, 3)) * M / (M - 1)
    np.testing.assert_allclose(bn.running_mean, rm, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, rv, rtol=1e-12)
    assert int(bn.num_batches_tracked) == 3 and bn.num_batches_tracked.dtype == np.int64


def test_momentum_none_is_a_cumulative_average(rng):
    bn = nn.BatchNorm2d(2, momentum=None).to(dtype=np.float64)
    xs = [rng.standard_normal((2, 2, 3, 3)) for _ in range(4)]
    for x in xs:
        bn(x)
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(axis=(0, 2, 3)) for x in xs], axis=0), rtol=1e-12)


def test_eval_uses_running_statistics_and_does_not_update_them(rng):
    bn = nn.BatchNorm2d(2).to(dtype=np.float64)
    bn.running_mean[...] = [1.0, -2.0]
    bn.running_var[...] = [4.0, 0.25]
    bn.weight.data[...] = [2.0, 1.0]
    bn.bias.data[...] = [0.5, 0.0]
    bn.eval()
    x = rng.standard_normal((2, 2, 3, 3))
    expect = (x - np.array([1.0, -2.0]).reshape(1, 2, 1, 1)) / np.sqrt(np.array([4.0, 0.25]) + 1e-5).reshape(1, 2, 1, 1)
    expect = expect * np.array([2.0, 1.0]).reshape(1, 2, 1, 1) + np.array([0.5, 0.0]).reshape(1, 2, 1, 1)
    np.testing.assert_allclose(bn(x), expect, rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean, [1.0, -2.0])
    assert int(bn.num_batches_tracked) == 0


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (5, 3, 3, 2), (4, 3, 1, 1)])
def test_batchnorm_gradcheck(train, shape, rng, device, path):
    bn = nn.BatchNorm2d(3)
    bn.weight.data[...] = rng.uniform(0.5, 1.5, 3)
    bn.bias.data[...] = rng.normal(0, 0.1, 3)
    bn.running_mean[...] = rng.normal(0, 0.1, 3)
    bn.running_var[...] = rng.uniform(0.5, 1.5, 3)
    bn.train(train).to(device)
    result = check_module(bn, on(device, rng.standard_normal(shape) * 2 + 1), max_entries=100)
    assert result.ok, str(result)


class ForgetsMeanTerm(nn.BatchNorm2d):
    """A classic bug: the backward forgets that the batch mean depends on x."""

    def backward(self, grad_out):
        xhat, inv_std, _ = self.saved
        C = self.num_features
        self.bias.grad += grad_out.sum(axis=(0, 2, 3))
        self.weight.grad += (grad_out * xhat).sum(axis=(0, 2, 3))
        dxhat = grad_out * self.weight.data.reshape(1, C, 1, 1)
        # missing: - dxhat.mean(axis=(0, 2, 3), keepdims=True)
        return inv_std.reshape(1, C, 1, 1) * (dxhat - xhat * (dxhat * xhat).mean(axis=(0, 2, 3), keepdims=True))


class ForgetsVarianceTerm(nn.BatchNorm2d):
    """The other classic bug: the backward forgets that the batch variance depends on x."""

    def backward(self, grad_out):
        xhat, inv_std, _ = self.saved
        C = self.num_features
        self.bias.grad += grad_out.sum(axis=(0, 2, 3))
        self.weight.grad += (grad_out * xhat).sum(axis=(0, 2, 3))
        dxhat = grad_out * self.weight.data.reshape(1, C, 1, 1)
        return inv_std.reshape(1, C, 1, 1) * (dxhat - dxhat.mean(axis=(0, 2, 3), keepdims=True))


@pytest.mark.parametrize("buggy", [ForgetsMeanTerm, ForgetsVarianceTerm])
def test_checker_catches_a_broken_batchnorm_backward(buggy, rng):
    x = rng.standard_normal((4, 3, 3, 3))
    result = check_module(buggy(3), x)
    assert not result.ok
    errors = result.errors()
    assert errors["input"] > 1e-2          # the broken tensor is named ...
    assert errors["weight"] < 1e-6 and errors["bias"] < 1e-6  # ... and the correct ones pass
    assert "FAIL" in str(result) and "input" in str(result)


def test_sum_of_outputs_would_hide_the_variance_bug(rng):
    """Why the checker uses a random upstream gradient: with g = 1 (L = sum(y)) the true dx
    of a training-mode batch norm is exactly zero, and the broken backward returns zero too."""
    x = rng.standard_normal((4, 3, 3, 3))
    good, bad = nn.BatchNorm2d(3).to(dtype=np.float64), ForgetsVarianceTerm(3).to(dtype=np.float64)
    ones = np.ones((4, 3, 3, 3))
    good(x)
    bad(x)
    np.testing.assert_allclose(good.backward(ones), 0, atol=1e-10)
    np.testing.assert_allclose(bad.backward(ones), 0, atol=1e-10)


def test_batchnorm_bad_input():
    bn = nn.BatchNorm2d(4)
    with pytest.raises(ValueError, match="expected 4 channels.*got 3"):
        bn(np.zeros((2, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match="more than one value per channel"):
        bn(np.zeros((1, 4, 1, 1), np.float32))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # NumPy says "overflow", "invalid value": so do we
@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e30])
def test_a_running_statistic_that_is_not_finite_is_refused_and_nothing_is_written(rng, device, path, bad):
    """One NaN in a batch makes every channel's mean NaN; 1e30 in float32 makes a variance overflow.
    Written, either would stay in the running statistics for good (issue 27): refused, naming the layer."""
    model = nn.Sequential(nn.BatchNorm2d(3)).to(device)
    bn = model[0]
    bn(on(device, rng.standard_normal((4, 3, 5, 5)).astype(np.float32)))      # one good batch first
    before = [to_numpy(a).copy() for a in (bn.running_mean, bn.running_var, bn.num_batches_tracked)]
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    x[2, 1, 3, 3] = bad
    with pytest.raises(FloatingPointError) as e:
        bn(on(device, x))
    message = str(e.value)
    assert message.startswith("BatchNorm2d '0': this batch would make the running ") and "in 1 of 3 channels" in message
    assert ("mean nan" in message) == bool(np.isnan(bad)) and "so they keep their values" in message
    after = [to_numpy(a) for a in (bn.running_mean, bn.running_var, bn.num_batches_tracked)]
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)
    bn.eval()                                             # and evaluation still gives numbers
    assert np.isfinite(to_numpy(bn(on(device, rng.standard_normal((2, 3, 4, 4)).astype(np.float32))))).all()
