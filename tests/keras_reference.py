"""Seeded Keras-layout weights and inputs for the Keras parity tests (NumPy only, no Keras).

tools/make_keras_fixtures.py builds the Keras models, gives them these weights and stores
Keras's outputs in tests/fixtures/keras/; tests/test_keras_parity.py builds the same weights
here, loads them through minires's Keras mapping (``state_dict_from_keras``) and compares.

Each array depends on (seed, layer name, role, shape) only -- never on the model around it --
and is made in Keras's layout (a conv kernel is (KH, KW, C_in, C_out)). The rule, by role:

    kernel, 4-D    normal(0, sqrt(2 / (KH * KW * C_in)))     He, as tests/reference.py
    kernel, 2-D    normal(0, 1 / sqrt(in))
    bias, beta     normal(0, 0.1)
    gamma          uniform(0.5, 1.5)
    moving_mean    normal(0, 0.1)
    moving_variance uniform(0.5, 1.5)

As for the PyTorch fixtures, residual branches are damped so that eval mode (random running
statistics) keeps the logits O(1): the gamma of the last batch norm of each block (v1, the
seed) or the last conv's kernel and bias of each block (v2, which ends its branch in a conv)
is multiplied by BRANCH_GAIN.
"""
import re
import zlib

import numpy as np

BRANCH_GAIN = 0.1

# The fixtures: name -> (how the tool builds it, the minires constructor and kwargs)
KERAS_FIXTURES = {
    "keras_resnet50": "ResNet50", "keras_resnet101": "ResNet101", "keras_resnet152": "ResNet152",
    "keras_resnet50v2": "ResNet50V2", "keras_resnet101v2": "ResNet101V2", "keras_resnet152v2": "ResNet152V2",
    "tf_resnet34": "seed", "tf_resnet50": "seed", "tf_resnet101": "seed",
}
INPUT_SHAPE = (2, 64, 48, 3)     # NHWC: small, and not square; 64 pads asymmetrically under SAME at stride 2
SEED_WEIGHTS, SEED_INPUT, SEED_UPSTREAM = 0, 1, 2

# The tiny networks whose Keras-written weight files are committed (tests/fixtures/keras/files/):
# keras.applications' ResNet with a custom stack, widths 2..8 -> a few kB per file.
TINY = {"tiny_v1": dict(version=1, layers=[1, 2], widths=[2, 4]),
        "tiny_v2": dict(version=2, layers=[2, 2], widths=[2, 4])}
TINY_INPUT_SHAPE = (2, 40, 36, 3)


def _rng(seed, key):
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def keras_reference_tensor(layer, role, shape, seed=SEED_WEIGHTS):
    """One Keras weight, in Keras's layout, from (seed, layer, role, shape) only."""
    shape = tuple(int(s) for s in shape)
    rng = _rng(seed, f"{layer.replace('/', '_')}/{role}")
    if role == "kernel" and len(shape) == 4:
        return rng.normal(0.0, np.sqrt(2.0 / (shape[0] * shape[1] * shape[2])), size=shape)
    if role == "kernel" and len(shape) == 2:
        return rng.normal(0.0, 1.0 / np.sqrt(shape[0]), size=shape)
    if role in ("bias", "beta", "moving_mean"):
        return rng.normal(0.0, 0.1, size=shape)
    if role in ("gamma", "moving_variance"):
        return rng.uniform(0.5, 1.5, size=shape)
    raise ValueError(f"no reference rule for {layer}/{role} with shape {shape}")


def keras_reference_weights(layers, seed=SEED_WEIGHTS, gain=BRANCH_GAIN):
    """{layer: [(role, shape)]} -> {layer: [(role, array)]}, branch ends damped by ``gain``."""
    flat = {n.replace("/", "_") for n in layers}
    bottleneck = any(n.endswith("_conv3_BatchNorm") for n in flat)
    out = {}
    for layer, roles in layers.items():
        f = layer.replace("/", "_")
        is_end = (re.search(r"_block\d+_3_bn$", f) or re.search(r"_block\d+_3_conv$", f)
                  or re.search(r"^block\d+_unit_\d+_conv%d_BatchNorm$" % (3 if bottleneck else 2), f))
        arrays = []
        for role, shape in roles:
            a = keras_reference_tensor(layer, role, shape, seed)
            if is_end and role in ("gamma", "kernel", "bias"):
                a = a * gain
            arrays.append((role, a))
        out[layer] = arrays
    return out


def keras_reference_input(shape=INPUT_SHAPE, seed=SEED_INPUT):
    """A float64 standard-normal NHWC batch."""
    return np.random.default_rng([seed, 0]).standard_normal(tuple(shape))


def keras_reference_upstream(shape, seed=SEED_UPSTREAM):
    return np.random.default_rng([seed, 1]).standard_normal(tuple(shape))


def model_layer_roles(model):
    """{Keras layer name: [(role, Keras-layout shape)]} of a minires Keras-flavoured model."""
    from minires.keras.weights import _expected
    out = {}
    for name, module in model.keras_layers():
        roles = []
        for role, target, axes in _expected(module, name):
            roles.append((role, target.shape if axes is None else tuple(target.shape[a] for a in np.argsort(axes))))
        out[name] = roles
    return out
