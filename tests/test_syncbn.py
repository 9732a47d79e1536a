"""Batch norm over a batch split into parts: one protocol (minires/nn/norm.py, ``BatchNorm2d.group``),
one statistic, one running update, for threads and processes, for both flavours of batch norm.

Two ranks are simulated by threads (``minires.parallel.mpi.simulate``); each normalises half of a
batch, and must compute exactly what one batch norm computes on the whole batch: outputs,
gradients, and the running statistics in the convention of the layer it is (PyTorch's unbiased
running variance and momentum, or Keras's biased one and its momentum).
"""
import numpy as np
import pytest

from minires import nn
from minires.keras import KerasBatchNorm2d
from minires.nn.norm import combine_moments
from minires.parallel import SyncBatchNorm, convert_sync_batchnorm, mpi

FLAVOURS = {"pytorch": lambda: nn.BatchNorm2d(3, momentum=0.1),
            "keras": lambda: KerasBatchNorm2d(3, eps=1.001e-5, keras_momentum=0.9)}


def two_ranks_against_one(make, plain, steps=2):
    """(the whole-batch layer, [rank 0's layer, rank 1's], their outputs and input gradients)."""
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((6, 3, 4, 4)) * 2 + 1 for _ in range(steps)]
    gs = [rng.standard_normal((6, 3, 4, 4)) for _ in range(steps)]
    whole = make().to(dtype=np.float64)
    ranks = [convert_sync_batchnorm(make().to(dtype=np.float64)) for _ in range(2)]
    with nn.plain(plain):
        expected = [(whole(x), whole.backward(g)) for x, g in zip(xs, gs)]

    def run():
        r = mpi.get_world().rank
        layer, part = ranks[r], slice(3 * r, 3 * r + 3)
        with nn.plain(plain):
            return [(layer(x[part]), layer.backward(g[part])) for x, g in zip(xs, gs)]
    out = mpi.simulate(2, run)
    return whole, ranks, expected, out


@pytest.mark.parametrize("plain", [True, False], ids=["plain", "fast"])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_two_synchronised_ranks_are_one_batch_norm_in_either_convention(flavour, plain):
    whole, ranks, expected, out = two_ranks_against_one(FLAVOURS[flavour], plain)
    for step, (y, dx) in enumerate(expected):
        np.testing.assert_allclose(np.concatenate([out[0][step][0], out[1][step][0]]), y, atol=1e-12)
        np.testing.assert_allclose(np.concatenate([out[0][step][1], out[1][step][1]]), dx, atol=1e-12)
    for r in ranks:
        assert type(r) is type(whole)                        # the layer it was, its convention with it
        np.testing.assert_allclose(r.running_mean, whole.running_mean, rtol=1e-13)
        np.testing.assert_allclose(r.running_var, whole.running_var, rtol=1e-13)
        assert int(r.num_batches_tracked) == int(whole.num_batches_tracked) == 2
    np.testing.assert_allclose(ranks[0].weight.grad + ranks[1].weight.grad, whole.weight.grad, atol=1e-12)


def test_the_keras_convention_is_not_pytorchs():
    """The test above would pass for a layer that ignored its convention only if the two agreed:
    they do not (biased running variance, the momentum read the other way round)."""
    keras, torch_bn = KerasBatchNorm2d(3, keras_momentum=0.9), nn.BatchNorm2d(3, momentum=0.1)
    x = np.random.default_rng(1).standard_normal((2, 3, 2, 2)).astype(np.float32)
    keras(x), torch_bn(x)
    np.testing.assert_allclose(keras.running_mean, torch_bn.running_mean, rtol=1e-6)   # 0.9 Keras == 0.1 PyTorch
    M = x.size // 3
    np.testing.assert_allclose(keras.running_var - 0.9, (torch_bn.running_var - 0.9) * (M - 1) / M, rtol=1e-5)


def test_convert_gives_every_batch_norm_the_world_and_keeps_everything_else():
    from minires.keras import tf_resnet34
    model = tf_resnet34(num_classes=5)
    before = {name: (type(m), m.weight, m.running_var) for name, m in model.named_modules()
              if isinstance(m, nn.BatchNorm2d)}
    keys = list(model.state_dict())
    assert convert_sync_batchnorm(model) is model
    after = {name: m for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert set(after) == set(before) and list(model.state_dict()) == keys
    for name, m in after.items():
        kind, weight, running_var = before[name]
        assert type(m) is kind and m.weight is weight and m.running_var is running_var and m.group is not None
    assert "statistics over every process" in repr(after["bn1"])


def test_syncbatchnorm_is_a_batch_norm_born_synchronised(rng):
    sync = SyncBatchNorm(4).to(dtype=np.float64)
    assert isinstance(sync, nn.BatchNorm2d) and sync.group is not None
    x = rng.standard_normal((3, 4, 3, 3)) + 2
    np.testing.assert_allclose(sync(x), nn.BatchNorm2d(4).to(dtype=np.float64)(x), atol=1e-13)


def test_combine_moments_is_chans_formula_in_float64():
    rng = np.random.default_rng(3)
    parts = [rng.normal(1e4, 1e-2, size=(2, n)).astype(np.float32) for n in (5, 9)]   # |mean| >> std
    mean, var, M = combine_moments([(p.shape[1], p.mean(axis=1), p.var(axis=1)) for p in parts])
    whole = np.concatenate(parts, axis=1).astype(np.float64)
    assert M == 14 and mean.dtype == np.float64
    np.testing.assert_allclose(var, whole.var(axis=1), rtol=1e-3)    # E[x^2] - E[x]^2 in float32 gives 0 or noise
