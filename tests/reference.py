"""Reference weights, inputs and fixtures for the PyTorch parity tests (NumPy only, no torch).

tools/make_model_fixtures.py builds the same weights and inputs with these functions, runs
PyTorch on them and stores the results in tests/fixtures/. A parity test rebuilds the weights
here, loads them into the minires model and compares with the stored numbers.

Weights: each tensor comes from its own generator, np.random.default_rng([seed, crc32(key)]),
so it depends on (seed, key, shape) only -- never on the order of the keys or on the model
around it. The rule, chosen by the key's suffix and number of dimensions:

    4-D  (conv weight, C_out x C_in/groups x KH x KW)  normal(0, sqrt(2 / fan_in)),
                                                        fan_in = C_in/groups * KH * KW  (He)
    2-D  (Linear weight, out x in)                      normal(0, 1 / sqrt(in))
    1-D  '*.weight'        (BatchNorm gamma)            uniform(0.5, 1.5)
    1-D  '*.bias'          (BatchNorm beta, Linear bias) normal(0, 0.1)
    '*.running_mean'                                    normal(0, 0.1)
    '*.running_var'                                     uniform(0.5, 1.5)
    '*.num_batches_tracked'                             int64 0-d array, value 0

He-scaled convs keep the second moment of the activations about constant through a conv +
ReLU, BatchNorm in training mode renormalises every batch, and gamma, beta and the running
statistics are kept near (1, 0, 0, 1) but not equal to them, so a swapped or forgotten
parameter changes the output. In training mode the activations stay O(1) through 150 layers.
In eval mode the random running statistics do not match the real ones, so nothing renormalises
the residual stream: with branches as large as their inputs the logits would grow with depth
(ResNet-152 to ~1e11, ResNet-1202 to ~1e124, past float32's range). So for residual nets the
gamma of the LAST batch norm of every block is multiplied by ``branch_gain`` (0.1 in the
fixtures; 1.0, no change, for the plain nets, whose keys are the same): small residual branches,
as in trained nets and zero_init_residual. Eval logits then stay below ~1e4 for every model.

Fixture files (.npz, read with allow_pickle=False): an array larger than 20,000 entries is
stored as a sample, '<name>__idx' (int64 flat indices, sorted), '<name>__val' (values at those
indices) and '<name>__shape' (the full shape); smaller arrays are stored whole under '<name>'.
`fixture_pairs` hides the difference. The entries are listed in tools/README.md.
"""
import os
import re
import zlib

import numpy as np

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

# tests/fixtures/models/<name>.npz; '<name>' is the constructor name except resnet20_B
# (resnet20 with shortcut='B'); each file says its 'constructor' and 'kwargs' (JSON).
MODEL_FIXTURES = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "resnext101_32x8d", "wide_resnet50_2", "resnet50_v1",
    "resnet20", "resnet20_B", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202",
    "plain20", "plain32", "plain44", "plain56", "plain110",
)


def _rng(seed, key):
    """A generator that depends on (seed, key) only."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def reference_tensor(key, shape, seed):
    """One state_dict entry: the array for `key` with `shape`, by the rule in the module doc."""
    shape = tuple(int(s) for s in shape)
    rng = _rng(seed, key)
    if key.endswith("num_batches_tracked"):
        if shape != ():
            raise ValueError(f"{key}: num_batches_tracked must have shape (), got {shape}")
        return np.array(0, dtype=np.int64)
    if key.endswith("running_mean"):
        return rng.normal(0.0, 0.1, size=shape)
    if key.endswith("running_var"):
        return rng.uniform(0.5, 1.5, size=shape)
    if len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
    if len(shape) == 2:
        return rng.normal(0.0, 1.0 / np.sqrt(shape[1]), size=shape)
    if len(shape) == 1 and key.endswith(".weight"):
        return rng.uniform(0.5, 1.5, size=shape)
    if len(shape) == 1 and key.endswith(".bias"):
        return rng.normal(0.0, 0.1, size=shape)
    raise ValueError(f"no reference rule for key {key!r} with shape {shape}: expected a 4-D "
                     "conv weight, 2-D linear weight, 1-D '.weight'/'.bias', running_mean, "
                     "running_var or num_batches_tracked")


def last_bn_weights(keys):
    """The gamma keys of the last batch norm of every block ('layer2.0.bn2.weight' in a basic
    block, 'layer2.0.bn3.weight' in a bottleneck)."""
    last = {}
    for key in keys:
        m = re.match(r"^(layer\d+\.\d+)\.bn(\d)\.weight$", key)
        if m:
            last[m.group(1)] = max(last.get(m.group(1), 0), int(m.group(2)))
    return {f"{block}.bn{i}.weight" for block, i in last.items()}


def reference_state_dict(named_shapes, seed, branch_gain=1.0):
    """{key: array} for an iterable of (key, shape); float64, num_batches_tracked int64 0-d.

    Each array depends only on (seed, key, shape) and ``branch_gain`` (see the module doc),
    so the result does not depend on the order.
    """
    if isinstance(named_shapes, dict):
        named_shapes = named_shapes.items()
    out = {}
    for key, shape in named_shapes:
        if not isinstance(key, str):
            raise TypeError(f"state_dict keys must be str, got {type(key).__name__}: {key!r}")
        out[key] = reference_tensor(key, shape, seed)
    if branch_gain != 1.0:
        for key in last_bn_weights(out):
            out[key] = out[key] * branch_gain
    return out


def reference_input(shape, seed):
    """A float64 standard-normal batch of the given shape, e.g. (N, C, H, W)."""
    return np.random.default_rng([seed, 0]).standard_normal(tuple(shape))


def reference_upstream(shape, seed):
    """The upstream gradient dL/dlogits used for backward: float64 standard normal (N, K).

    Random on purpose: with ones (the gradient of sum(y)) the true input gradient of a
    training-mode BatchNorm is identically zero, and a broken backward would pass.
    """
    return np.random.default_rng([seed, 1]).standard_normal(tuple(shape))


def sample_indices(size, count, seed, name):
    """`count` sorted distinct flat indices in [0, size), drawn from (seed, name) only."""
    return np.sort(_rng(seed, name).choice(size, size=count, replace=False)).astype(np.int64)


def fixture_path(name, kind="models"):
    """Path of tests/fixtures/<kind>/<name>.npz."""
    return os.path.join(FIXTURE_DIR, kind, name + ".npz")


def load_fixture(name, kind="models"):
    """tests/fixtures/<kind>/<name>.npz as a plain {entry: np.ndarray} dict."""
    path = fixture_path(name, kind)
    if not os.path.exists(path):
        have = sorted(f[:-4] for f in os.listdir(os.path.dirname(path))
                      if f.endswith(".npz")) if os.path.isdir(os.path.dirname(path)) else []
        raise FileNotFoundError(f"no fixture {name!r} at {path}; available: {have}")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def fixture_names(fixture):
    """The logical array names in a fixture: sampled '<name>__idx/__val/__shape' count once."""
    names = set()
    for k in fixture:
        for suffix in ("__idx", "__val", "__shape"):
            if k.endswith(suffix):
                k = k[: -len(suffix)]
        names.add(k)
    return sorted(names)


def fixture_shape(fixture, name):
    """The full shape of array `name`, whether stored whole or sampled."""
    if name in fixture:
        return tuple(fixture[name].shape)
    if name + "__shape" in fixture:
        return tuple(int(s) for s in fixture[name + "__shape"])
    raise KeyError(f"fixture has no array {name!r}; it has {fixture_names(fixture)}")


def fixture_pairs(fixture, name, actual):
    """(expected, actual_values) to compare, for an array stored whole or sampled.

    actual: the full array computed by minires (any array with a .shape; CuPy arrays should be
    moved to NumPy first). For a sampled entry, actual is read at the stored flat indices, so
    both results are 1-D of the sample size; otherwise both have the full shape.
    """
    expected_shape = fixture_shape(fixture, name)
    actual = np.asarray(actual)
    if tuple(actual.shape) != expected_shape:
        raise ValueError(f"{name}: expected shape {expected_shape} (PyTorch), got {actual.shape}")
    if name in fixture:
        return fixture[name], actual
    idx = fixture[name + "__idx"]
    return fixture[name + "__val"], actual.reshape(-1)[idx]


def fixture_group(fixture, prefix):
    """Names under a prefix, without it: fixture_group(fx, 'grad/') -> ['bn1.bias', ...]."""
    return [n[len(prefix):] for n in fixture_names(fixture) if n.startswith(prefix)]


def fixture_state_shapes(fixture):
    """[(key, shape)] of the PyTorch model's full state_dict, in PyTorch's order.

    'shapes' is stored as a (K, 4) int64 array padded with -1 (0-d entries are all -1).
    """
    return [(str(k), tuple(int(s) for s in row if s >= 0))
            for k, row in zip(fixture["keys"], fixture["shapes"])]


def fixture_model(name, small=None):
    """The fixture's minires model in float64 with the fixture's weights (strict load), and an
    input: the fixture's own, or one of ``small`` x ``small`` pixels (two images)."""
    import json

    from minires.zoo import get_model
    fx = load_fixture(name)
    model = get_model(str(fx["constructor"]), **json.loads(str(fx["kwargs"]))).to(dtype=np.float64)
    model.load_state_dict(reference_state_dict(fixture_state_shapes(fx), int(fx["seed_weights"]),
                                               float(fx["branch_gain"])))
    shape = tuple(int(s) for s in fx["input_shape"])
    if small:
        shape = (2, shape[1], small, small)
    return model, reference_input(shape, int(fx["seed_input"]))
