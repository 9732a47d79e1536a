"""Tests of tests/reference.py (the NumPy side of the PyTorch parity fixtures) and of the
committed fixture files: they load and hold the documented entries. The parity itself lives
in the model and optimizer tests."""
import json
import os

import numpy as np
import pytest

from reference import (MODEL_FIXTURES, fixture_group, fixture_names, fixture_pairs,
                       fixture_path, fixture_shape, fixture_state_shapes, load_fixture,
                       reference_input, reference_state_dict, reference_tensor,
                       reference_upstream, sample_indices)

SHAPES = [
    ("conv1.weight", (64, 3, 7, 7)),
    ("bn1.weight", (64,)),
    ("bn1.bias", (64,)),
    ("bn1.running_mean", (64,)),
    ("bn1.running_var", (64,)),
    ("bn1.num_batches_tracked", ()),
    ("layer1.0.conv2.weight", (128, 4, 3, 3)),      # grouped conv: C_in/groups = 4
    ("fc.weight", (1000, 512)),
    ("fc.bias", (1000,)),
]


# --------------------------------------------------------------------------- weights and inputs

def test_state_dict_is_deterministic_and_order_independent():
    a = reference_state_dict(SHAPES, seed=0)
    b = reference_state_dict(list(reversed(SHAPES)), seed=0)
    c = reference_state_dict(SHAPES[3:5], seed=0)       # a subset: same arrays for its keys
    assert list(a) == [k for k, _ in SHAPES]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    for k in c:
        np.testing.assert_array_equal(a[k], c[k])


def test_state_dict_accepts_a_dict_of_shapes():
    a = reference_state_dict(dict(SHAPES), seed=4)
    np.testing.assert_array_equal(a["fc.weight"], reference_tensor("fc.weight", (1000, 512), 4))


def test_seed_and_key_change_the_values():
    a = reference_state_dict(SHAPES, seed=0)
    b = reference_state_dict(SHAPES, seed=1)
    assert not np.array_equal(a["conv1.weight"], b["conv1.weight"])
    # two keys with the same rule and shape still get different values
    assert not np.array_equal(a["bn1.bias"], a["bn1.running_mean"])


def test_dtypes_and_shapes():
    sd = reference_state_dict(SHAPES, seed=0)
    for key, shape in SHAPES:
        assert sd[key].shape == shape, key
        if key.endswith("num_batches_tracked"):
            assert sd[key].dtype == np.int64 and sd[key] == 0
        else:
            assert sd[key].dtype == np.float64, key
            assert np.all(np.isfinite(sd[key])), key


def test_distributions_follow_the_documented_rule():
    sd = reference_state_dict(SHAPES, seed=0)
    # He normal for convs: std sqrt(2 / fan_in), fan_in = shape[1] * KH * KW (per group)
    for key, fan_in in [("conv1.weight", 3 * 49), ("layer1.0.conv2.weight", 4 * 9)]:
        w = sd[key]
        assert abs(w.mean()) < 0.05 * np.sqrt(2 / fan_in)
        assert w.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.05), key
    assert sd["fc.weight"].std() == pytest.approx(1 / np.sqrt(512), rel=0.02)
    for key in ("bn1.weight", "bn1.running_var"):
        assert sd[key].min() >= 0.5 and sd[key].max() <= 1.5
        assert sd[key].std() > 0.1           # spread out, not a constant
    for key in ("bn1.bias", "bn1.running_mean", "fc.bias"):
        assert 0.05 < sd[key].std() < 0.15, key


def test_bad_keys_raise_clear_errors():
    with pytest.raises(ValueError, match="no reference rule"):
        reference_state_dict([("layer.weight", (2, 3, 4))], seed=0)
    with pytest.raises(ValueError, match="num_batches_tracked"):
        reference_state_dict([("bn.num_batches_tracked", (1,))], seed=0)
    with pytest.raises(TypeError, match="keys must be str"):
        reference_state_dict([(3, (2,))], seed=0)


def test_input_and_upstream():
    x = reference_input((2, 3, 8, 6), seed=1)
    assert x.shape == (2, 3, 8, 6) and x.dtype == np.float64
    np.testing.assert_array_equal(x, reference_input([2, 3, 8, 6], seed=1))
    assert not np.array_equal(x, reference_input((2, 3, 8, 6), seed=2))
    g = reference_upstream((2, 10), seed=1)
    assert g.shape == (2, 10) and g.dtype == np.float64
    assert not np.allclose(g, 1.0) and g.std() > 0.3
    # the same seed does not give the upstream gradient the values of the input
    assert not np.array_equal(g, reference_input((2, 10), seed=1))


def test_sample_indices():
    idx = sample_indices(50_000, 2_000, seed=3, name="grad/fc.weight")
    assert idx.dtype == np.int64 and idx.shape == (2_000,)
    assert np.all(np.diff(idx) > 0) and idx[0] >= 0 and idx[-1] < 50_000
    np.testing.assert_array_equal(idx, sample_indices(50_000, 2_000, 3, "grad/fc.weight"))
    assert not np.array_equal(idx, sample_indices(50_000, 2_000, 3, "grad/conv1.weight"))


def test_fixture_pairs_whole_and_sampled():
    full = np.arange(30.0).reshape(5, 6)
    idx = np.array([1, 7, 29])
    fx = {"a": full, "b__idx": idx, "b__val": full.reshape(-1)[idx],
          "b__shape": np.array([5, 6])}
    assert fixture_names(fx) == ["a", "b"]
    assert fixture_shape(fx, "b") == (5, 6)
    exp, act = fixture_pairs(fx, "a", full + 1)
    np.testing.assert_array_equal(exp + 1, act)
    exp, act = fixture_pairs(fx, "b", full)
    np.testing.assert_array_equal(exp, act)
    assert act.shape == (3,)
    with pytest.raises(ValueError, match=r"expected shape \(5, 6\)"):
        fixture_pairs(fx, "b", full.T)
    with pytest.raises(KeyError, match="no array 'c'"):
        fixture_pairs(fx, "c", full)


def test_missing_fixture_says_what_exists():
    with pytest.raises(FileNotFoundError, match="available"):
        load_fixture("resnet9000")


# --------------------------------------------------------------------------- committed fixtures

# the learnable-parameter counts of torchvision and of the paper (resnet20, option A)
PUBLISHED_NUM_PARAMS = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336, "wide_resnet50_2": 68_883_240,
    "resnet50_v1": 25_557_032, "resnet20": 269_722,
}
GRAD_KEYS = {"conv1.weight", "bn1.weight", "bn1.bias", "layer2.0.conv1.weight",
             "layer2.0.bn1.weight", "layer2.0.bn1.bias", "fc.weight", "fc.bias"}
RUNNING_KEYS = {f"{m}.{b}" for m in ("bn1", "layer2.0.bn1")
                for b in ("running_mean", "running_var", "num_batches_tracked")}
IS_BUFFER = ("running_mean", "running_var", "num_batches_tracked")
CIFAR_FIXTURES = {"resnet20", "resnet20_B", "resnet32", "resnet44", "resnet56", "resnet110",
                  "resnet1202", "plain20", "plain32", "plain44", "plain56", "plain110"}


@pytest.mark.parametrize("name", MODEL_FIXTURES)
def test_model_fixture_has_the_documented_entries(name):
    fx = load_fixture(name)
    assert str(fx["model"]) == name
    assert name.startswith(str(fx["constructor"]))
    assert isinstance(json.loads(str(fx["kwargs"])), dict)
    for seed in ("seed_weights", "seed_input", "seed_upstream"):
        assert fx[seed].dtype == np.int64 and fx[seed].shape == ()
    state = dict(fixture_state_shapes(fx))
    assert len(state) == len(fx["keys"]) and fx["shapes"].shape == (len(state), 4)

    # parameter count: all state_dict entries but the BN buffers
    n = sum(int(np.prod(s)) for k, s in state.items() if not k.endswith(IS_BUFFER))
    assert int(fx["num_params"]) == n
    if name in PUBLISHED_NUM_PARAMS:
        assert n == PUBLISHED_NUM_PARAMS[name]

    x_shape = tuple(int(s) for s in fx["input_shape"])
    assert x_shape == ((2, 3, 32, 32) if name in CIFAR_FIXTURES else (2, 3, 64, 48))
    logits_shape = (x_shape[0], state["fc.weight"][0])
    assert fixture_shape(fx, "out_eval") == logits_shape
    assert fixture_shape(fx, "out_train") == logits_shape
    assert fixture_shape(fx, "grad_input") == x_shape

    expected_grads = GRAD_KEYS | ({"layer2.0.downsample.0.weight"}
                                  if "layer2.0.downsample.0.weight" in state else set())
    assert set(fixture_group(fx, "grad/")) == expected_grads
    for k in expected_grads:
        assert fixture_shape(fx, "grad/" + k) == state[k], k
    assert set(fixture_group(fx, "running/")) == RUNNING_KEYS
    for k in RUNNING_KEYS:
        assert fixture_shape(fx, "running/" + k) == state[k], k
        assert fx["running/" + k].dtype == (np.int64 if "num_batches" in k else np.float64)
    assert int(fx["running/bn1.num_batches_tracked"]) == 1   # one training forward

    for entry in fixture_names(fx):
        if entry.startswith(("out_", "grad", "running/")):
            exp, _ = fixture_pairs(fx, entry, np.zeros(fixture_shape(fx, entry)))
            assert exp.dtype.kind in "fi" and np.all(np.isfinite(exp)), entry
            if entry + "__idx" in fx:
                assert fx[entry + "__idx"].shape == (2_000,)


def test_all_fixtures_stay_small():
    paths = [fixture_path(name) for name in MODEL_FIXTURES]
    assert sum(os.path.getsize(p) for p in paths) < 5_000_000


def test_reference_weights_rebuild_for_a_fixture():
    fx = load_fixture("resnet20_B")
    sd = reference_state_dict(fixture_state_shapes(fx), int(fx["seed_weights"]), float(fx["branch_gain"]))
    assert list(sd) == list(fx["keys"])
    assert sd["layer2.0.downsample.0.weight"].shape == (32, 16, 1, 1)
    # the stored running mean is the PyTorch update of the reference one (momentum 0.1)
    before = sd["layer2.0.bn1.running_mean"]
    after = fx["running/layer2.0.bn1.running_mean"]
    assert not np.allclose(before, after)
    # the batch means, (after - 0.9 * before) / 0.1, are O(1) in training mode
    assert np.abs(after - 0.9 * before).max() / 0.1 < 10
    assert np.all(fx["running/layer2.0.bn1.running_var"] > 0.45)


def test_branch_gain_scales_only_the_last_bn_of_each_block():
    from reference import last_bn_weights
    keys = {"layer1.0.bn1.weight": (4,), "layer1.0.bn2.weight": (4,), "layer2.1.bn1.weight": (4,),
            "layer2.1.bn2.weight": (4,), "layer2.1.bn3.weight": (4,), "bn1.weight": (4,)}
    assert last_bn_weights(keys) == {"layer1.0.bn2.weight", "layer2.1.bn3.weight"}
    plain = reference_state_dict(keys, 0)
    scaled = reference_state_dict(keys, 0, branch_gain=0.1)
    for k in keys:
        factor = 0.1 if k in ("layer1.0.bn2.weight", "layer2.1.bn3.weight") else 1.0
        np.testing.assert_allclose(scaled[k], plain[k] * factor)
