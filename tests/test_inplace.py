"""In place, safely: no layer option can give a wrong gradient.

An in-place layer (``ReLU(inplace=True)``, ``BatchNorm2d(inplace=True)``) writes over its input
only when no layer kept that input for its backward (``minires.engine.memory.may_overwrite``). These
tests gradient-check the stacks that used to go wrong, and random stacks drawn from a seeded
generator, on the fast path (where in place happens) and on the plain path.
"""
import numpy as np
import pytest

from helpers import away_from_kinks
from minires import nn
from minires.engine.memory import may_overwrite
from minires.teach.gradcheck import check_module
from minires.models.blocks import BasicBlock, Bottleneck, conv1x1, projection


def test_a_kept_array_is_not_overwritten(rng):
    relu = nn.ReLU()
    x = rng.standard_normal((2, 3, 4, 4))
    y = relu(x)                                     # ReLU keeps y for its backward
    assert not may_overwrite(y) and not may_overwrite(y[:, :2])   # nor a view of it
    fresh = y * 2
    assert may_overwrite(fresh)
    bn = nn.BatchNorm2d(3, inplace=True).to(dtype=np.float64)
    before = y.copy()
    bn(y)
    np.testing.assert_array_equal(y, before)        # the batch norm wrote a new array instead


def test_nothing_is_kept_under_no_grad_and_the_record_goes_with_the_array(rng):
    from minires.nn import module
    with nn.no_grad():
        y = nn.ReLU()(rng.standard_normal((2, 3)))
    assert may_overwrite(y)
    relu = nn.ReLU()
    relu(rng.standard_normal((2, 3)))
    kept = len(module.kept)
    relu(rng.standard_normal((2, 3)))           # the first output is freed: its record goes with it
    assert len(module.kept) == kept


@pytest.mark.parametrize("stack", [
    lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(4, inplace=True)),
    lambda: nn.Sequential(nn.MaxPool2d(2), nn.BatchNorm2d(3, inplace=True)),
    lambda: nn.Sequential(nn.Conv2d(3, 3, 1), nn.MaxPool2d(2), nn.ReLU(inplace=True)),
    lambda: nn.Sequential(nn.ReLU(), nn.ReLU(inplace=True), nn.BatchNorm2d(3, inplace=True)),
], ids=["conv-relu-bn_inplace", "maxpool-bn_inplace", "conv-maxpool-relu_inplace", "relu-relu_inplace-bn_inplace"])
def test_the_stacks_that_went_wrong(stack, rng, path):
    """Conv -> ReLU -> BN(inplace) and MaxPool -> BN(inplace) had relative error 1.0."""
    x = away_from_kinks(rng, (2, 3, 6, 6))
    result = check_module(stack(), x, max_entries=60)
    assert result.ok, str(result)


LAYERS = ["conv3", "conv1", "relu", "relu_inplace", "bn", "bn_inplace", "maxpool", "block", "bottleneck",
          "projection"]


def _layer(kind, C, rng):
    """A layer of ``kind`` taking C channels, and the number of channels it gives."""
    if kind == "conv3":
        return nn.Conv2d(C, C, 3, padding=1), C
    if kind == "conv1":
        return nn.Conv2d(C, C + 1, 1), C + 1
    if kind == "relu":
        return nn.ReLU(), C
    if kind == "relu_inplace":
        return nn.ReLU(inplace=True), C
    if kind in ("bn", "bn_inplace"):
        bn = nn.BatchNorm2d(C, inplace=kind == "bn_inplace")
        bn.weight.data[...] = rng.uniform(0.5, 1.5, C)
        bn.bias.data[...] = rng.normal(0, 0.2, C)
        return bn, C
    if kind == "maxpool":
        return nn.MaxPool2d(3, stride=1, padding=1), C
    if kind == "block":
        return BasicBlock(C, C), C
    if kind == "bottleneck":
        return Bottleneck(C, C, downsample=projection(C, 4 * C, 1)), 4 * C
    return nn.Sequential(conv1x1(C, C), nn.BatchNorm2d(C, inplace=True)), C


@pytest.mark.parametrize("seed", range(12))
def test_random_stacks_gradient_check(seed, path):
    """Random stacks of conv, ReLU and batch norm with and without in place, max-pool and
    residual blocks: the backward matches central differences on both paths."""
    rng = np.random.default_rng(seed)
    C, layers = 2, []
    for kind in rng.choice(LAYERS, size=int(rng.integers(3, 6))):
        layer, C = _layer(str(kind), C, rng)
        layers.append(layer)
    model = nn.Sequential(*layers)
    x = away_from_kinks(rng, (2, 2, 5, 5))
    result = check_module(model, x, mode="direction", seed=seed)
    # A gradient that is zero by the maths (zero up to rounding, next to the others) is not a
    # failure: e.g. a conv's bias or a batch norm's scale right before a training-mode batch
    # norm, which removes any constant shift and any scale of its input.
    scale = max(np.abs(r["analytic"]).max() for r in result.rows)
    failed = [r["tensor"] for r in result.rows if r["error"] >= result.tol
              and max(np.abs(r["analytic"]).max(), np.abs(r["numeric"]).max()) > 1e-5 * scale]
    assert not failed, f"{[type(m).__name__ for m in layers]}\n{result}"
