"""PyTorch parity: the same weights give PyTorch's outputs, gradients and running statistics.

The fixtures in tests/fixtures/models were made by tools/make_model_fixtures.py with
torch 2.13.0 (torch is never imported here). Each holds the seeds of the weights and the
input; the weights are rebuilt with tests/reference.py, loaded with strict=True, and the
model is run in eval mode and in train mode (forward + backward with a random upstream
gradient), in float64 and in float32.

Tolerances (relative to each tensor's scale), and why they are what they are:
- float64: 1e-9 for every tensor of every model. One exception, plain110 in training mode
  (1e-6): a deep plain net with batch norm is chaotic in training mode -- rounding errors grow
  by about 1.2x per layer (the gradient explosion of Yang et al., 2019; part of why plain nets
  degrade) -- and PyTorch's float64 and ours, both right, differ by 4e-8 there.
- float32: how close float32 can get depends on the net, so the fixtures also record how far
  PyTorch's OWN float32 lands from its float64 ('float32_err/<entry>'). minires's float32 must
  be within 1e-4 (logits, fc gradients) or 1e-2 (gradients deep in the net), or within 10x of
  PyTorch's own float32 error where that is larger. Why 1e-2 deep down: in float32 a few of the
  ~1e6 ReLU inputs land within rounding of 0 and take the other side of the kink, which moves
  the gradient of everything below them by ~1e-3; which ones flip is luck, ours or PyTorch's
  (PyTorch float32 vs float64 on these fixtures: ResNet-101 3e-3, ResNet-1202 5e-3 at the input).
  Where PyTorch's float32 is itself off by more than 5% (plain56's and plain110's chaotic
  training mode) there is nothing to compare and the entry is left out; eval mode always is.
"""
import json

import numpy as np
import pytest

from backends import NO_GPU, REAL_GPU
from minires.backend import to_device, to_numpy
from minires.zoo import get_model
from reference import (MODEL_FIXTURES, fixture_group, fixture_pairs, fixture_state_shapes, load_fixture,
                       reference_input, reference_state_dict, reference_upstream)

def tolerance(fx, entry, dtype):
    """The tolerance for a train-mode entry (see the module docstring); None: not comparable."""
    if dtype == np.float64:
        return 1e-6 if str(fx["model"]) == "plain110" else 1e-9
    pytorch_float32 = float(fx["float32_err/" + entry])
    if pytorch_float32 > 0.05:
        return None
    deep = entry == "grad_input" or (entry.startswith("grad/") and not entry.startswith("grad/fc."))
    return max(1e-2 if deep else 1e-4, 10 * pytorch_float32)


def check(fx, entry, actual, dtype):
    tol = tolerance(fx, entry, dtype)
    if tol is None:
        return 0
    expected, actual = fixture_pairs(fx, entry, actual)
    assert rel_err(expected, actual) < tol, f"{entry}: relative error {rel_err(expected, actual):.2e} >= {tol:.0e}"
    return 1


def rel_err(expected, actual):
    """max|a - e| / max|e|: relative to the tensor's scale, not entry by entry."""
    expected, actual = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def build(fx):
    return get_model(str(fx["constructor"]), **json.loads(str(fx["kwargs"])))


def reference_weights(fx):
    return reference_state_dict(fixture_state_shapes(fx), int(fx["seed_weights"]), float(fx["branch_gain"]))


TORCHVISION_COUNTS = {  # torchvision's own published parameter counts
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904, "resnext101_32x8d": 88_791_336,
    "wide_resnet50_2": 68_883_240, "resnet50_v1": 25_557_032, "resnet20": 269_722,
}


@pytest.mark.parametrize("name", MODEL_FIXTURES)
def test_same_state_dict_keys_shapes_and_count_as_pytorch(name):
    fx = load_fixture(name)
    model = build(fx)
    sd = model.state_dict()
    assert list(sd) == [k for k, _ in fixture_state_shapes(fx)]          # same keys, same order
    assert [tuple(v.shape) for v in sd.values()] == [tuple(s) for _, s in fixture_state_shapes(fx)]
    assert model.num_parameters() == int(fx["num_params"])
    if name in TORCHVISION_COUNTS:
        assert model.num_parameters() == TORCHVISION_COUNTS[name]


# The [strict] column (the CuPy stand-in, on the CPU) runs on a few models that between them hold
# every kind of layer and shortcut: option-A and projection shortcuts, a plain net, basic blocks
# with max-pool, grouped bottlenecks; all 21 would add minutes of stand-in overhead to every run.
STRICT_MODELS = ("resnet20", "resnet20_B", "plain20", "resnet18", "resnext50_32x4d")
BACKEND_CASES = [pytest.param(name, b, id=f"{name}-{b}",
                              marks=[pytest.mark.skipif(not REAL_GPU, reason=NO_GPU)] if b == "cupy" else [])
                 for name in MODEL_FIXTURES for b in ("numpy", "strict", "cupy")
                 if b != "strict" or name in STRICT_MODELS]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name, backend_name", BACKEND_CASES, indirect=["backend_name"])
def test_outputs_gradients_and_running_stats_match_pytorch(name, backend_name, device, dtype):
    fx = load_fixture(name)
    weights = reference_weights(fx)
    x = to_device(reference_input(tuple(fx["input_shape"]), int(fx["seed_input"])).astype(dtype), device)
    model = build(fx).to(device, dtype=dtype)

    model.load_state_dict(weights, strict=True)
    model.eval()
    expected, actual = fixture_pairs(fx, "out_eval", to_numpy(model(x)))
    assert rel_err(expected, actual) < (1e-9 if dtype == np.float64 else 1e-4), "eval logits"

    model.load_state_dict(weights, strict=True)  # fresh running statistics
    model.train()
    model.zero_grad()
    logits = model(x)
    compared = check(fx, "out_train", to_numpy(logits), dtype)
    dx = model.backward(to_device(reference_upstream(logits.shape, int(fx["seed_upstream"])).astype(dtype), device))
    compared += check(fx, "grad_input", to_numpy(dx), dtype)
    params = dict(model.named_parameters())
    for key in fixture_group(fx, "grad/"):
        compared += check(fx, "grad/" + key, to_numpy(params[key].grad), dtype)
    if dtype == np.float64 or name not in ("plain56", "plain110"):
        assert compared == 2 + len(fixture_group(fx, "grad/"))  # only the chaotic nets leave entries out

    buffers = dict(model.named_buffers())  # running statistics: one batch's mean and variance
    for key in fixture_group(fx, "running/"):
        expected, actual = fixture_pairs(fx, "running/" + key, to_numpy(buffers[key]))
        if key.endswith("num_batches_tracked"):
            assert int(actual) == int(expected) == 1
        else:
            assert rel_err(expected, actual) < (1e-9 if dtype == np.float64 else 1e-4), key
