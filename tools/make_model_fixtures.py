"""Regenerate the PyTorch reference fixtures in tests/fixtures/ (needs torch; see tools/README.md).

    /work/torchvenv/bin/python tools/make_model_fixtures.py            # everything
    /work/torchvenv/bin/python tools/make_model_fixtures.py resnet20   # some models only
    /work/torchvenv/bin/python tools/make_model_fixtures.py sgd        # the optimizer fixture

For each model, in float64: build the PyTorch reference net (tools/torch_reference.py), load the
weights of tests/reference.py with strict=True, and store
  - the logits in eval mode,
  - in train mode (a fresh copy of the same weights): the logits, the input gradient and some
    parameter gradients for a random upstream gradient, and the BN running statistics after
    that one forward pass;
  - how far PyTorch's own float32 train-mode results lie from these float64 ones
    ('float32_err/<entry>', a scalar each): the yardstick for minires's float32 parity.
The optimizer fixture (tests/fixtures/optim/sgd_reference.npz) is written by make_optim_fixture.py.
Entries and their names are documented in tools/README.md.
"""
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import torch_reference as R  # noqa: E402
from reference import (MODEL_FIXTURES, fixture_path, reference_input,  # noqa: E402
                       reference_state_dict, reference_upstream, sample_indices)

SEED_WEIGHTS = 0        # reference_state_dict(shapes, SEED_WEIGHTS)
SEED_INPUT = 1          # reference_input(input_shape, SEED_INPUT)
SEED_UPSTREAM = 2       # reference_upstream(logits.shape, SEED_UPSTREAM)
SEED_SAMPLE = 3         # sample_indices(size, SAMPLE_SIZE, SEED_SAMPLE, entry_name)
MAX_WHOLE = 20_000      # arrays with more entries than this are stored as a sample
SAMPLE_SIZE = 2_000
MAX_TOTAL_BYTES = 5_000_000
BRANCH_GAIN = 0.1       # residual nets: last BN gamma of each block x 0.1 (tests/reference.py)

IMAGENET_INPUT = (2, 3, 64, 48)   # non-square on purpose: catches H/W mix-ups
CIFAR_INPUT = (2, 3, 32, 32)

# fixture name -> (constructor, keyword arguments, input shape)
MODELS = {
    "resnet18": (R.resnet18, {}, IMAGENET_INPUT),
    "resnet34": (R.resnet34, {}, IMAGENET_INPUT),
    "resnet50": (R.resnet50, {}, IMAGENET_INPUT),
    "resnet101": (R.resnet101, {}, IMAGENET_INPUT),
    "resnet152": (R.resnet152, {}, IMAGENET_INPUT),
    "resnext50_32x4d": (R.resnext50_32x4d, {}, IMAGENET_INPUT),
    "resnext101_32x8d": (R.resnext101_32x8d, {}, IMAGENET_INPUT),
    "wide_resnet50_2": (R.wide_resnet50_2, {}, IMAGENET_INPUT),
    "resnet50_v1": (R.resnet50_v1, {}, IMAGENET_INPUT),
    "resnet20": (R.resnet20, {"shortcut": "A"}, CIFAR_INPUT),
    "resnet20_B": (R.resnet20, {"shortcut": "B"}, CIFAR_INPUT),
    "resnet32": (R.resnet32, {"shortcut": "A"}, CIFAR_INPUT),
    "resnet44": (R.resnet44, {"shortcut": "A"}, CIFAR_INPUT),
    "resnet56": (R.resnet56, {"shortcut": "A"}, CIFAR_INPUT),
    "resnet110": (R.resnet110, {"shortcut": "A"}, CIFAR_INPUT),
    "resnet1202": (R.resnet1202, {"shortcut": "A"}, CIFAR_INPUT),
    "plain20": (R.plain20, {}, CIFAR_INPUT),
    "plain32": (R.plain32, {}, CIFAR_INPUT),
    "plain44": (R.plain44, {}, CIFAR_INPUT),
    "plain56": (R.plain56, {}, CIFAR_INPUT),
    "plain110": (R.plain110, {}, CIFAR_INPUT),
}
assert tuple(MODELS) == MODEL_FIXTURES, "keep tests/reference.py MODEL_FIXTURES in step"

# parameter gradients stored after the train-mode backward (those that exist in the model)
GRAD_KEYS = ["conv1.weight", "bn1.weight", "bn1.bias", "layer2.0.conv1.weight",
             "layer2.0.bn1.weight", "layer2.0.bn1.bias", "layer2.0.downsample.0.weight",
             "fc.weight", "fc.bias"]
# buffers stored after the train-mode forward (momentum 0.1, unbiased variance)
RUNNING_KEYS = [f"{m}.{b}" for m in ("bn1", "layer2.0.bn1")
                for b in ("running_mean", "running_var", "num_batches_tracked")]


def put(store, name, array):
    """Store `array` whole, or as a sample of SAMPLE_SIZE flat entries if it is big."""
    array = np.asarray(array)
    if array.size <= MAX_WHOLE:
        store[name] = array
        return
    idx = sample_indices(array.size, SAMPLE_SIZE, SEED_SAMPLE, name)
    store[name + "__idx"] = idx
    store[name + "__val"] = array.reshape(-1)[idx]
    store[name + "__shape"] = np.array(array.shape, dtype=np.int64)


def build(ctor, kwargs, numpy_sd):
    """The torch model with the reference weights loaded (strict: same keys and shapes)."""
    model = ctor(**kwargs)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in numpy_sd.items()},
                          strict=True)
    return model


def rel_err(expected, actual):
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def float32_errors(store, ctor, kwargs, name, x, up, logits64, dx64, params64):
    """PyTorch's own float32 error against its float64, per train-mode entry, as 'float32_err/<entry>'.

    How far float32 can be trusted depends on the net (kinks, chaotic plain nets): the parity
    test allows minires's float32 a few times what PyTorch's float32 itself shows here.
    """
    branch_gain = 1.0 if name.startswith("plain") else BRANCH_GAIN
    shapes = [(k, tuple(v.shape)) for k, v in ctor(**kwargs).state_dict().items()]
    sd = reference_state_dict(shapes, SEED_WEIGHTS, branch_gain=branch_gain)
    model = ctor(**kwargs).float()
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32) if v.dtype == np.float64 else v.copy())
                           for k, v in sd.items()}, strict=True)
    model.train()
    xt = torch.from_numpy(x.astype(np.float32)).requires_grad_(True)
    logits = model(xt)
    logits.backward(torch.from_numpy(up.astype(np.float32)))
    store["float32_err/out_train"] = np.array(rel_err(logits64, logits.detach().numpy().astype(np.float64)))
    store["float32_err/grad_input"] = np.array(rel_err(dx64, xt.grad.numpy().astype(np.float64)))
    params = dict(model.named_parameters())
    for k in GRAD_KEYS:
        if k in params:
            store["float32_err/grad/" + k] = np.array(rel_err(params64[k].grad.numpy(),
                                                              params[k].grad.numpy().astype(np.float64)))


def make_model_fixture(name):
    ctor, kwargs, input_shape = MODELS[name]
    model = ctor(**kwargs)
    state = model.state_dict()
    shapes = [(k, tuple(v.shape)) for k, v in state.items()]
    n_params = R.num_params(model)
    if name in R.EXPECTED_NUM_PARAMS and n_params != R.EXPECTED_NUM_PARAMS[name]:
        raise AssertionError(f"{name}: {n_params} parameters, torchvision/paper has "
                             f"{R.EXPECTED_NUM_PARAMS[name]}")
    del model, state
    branch_gain = 1.0 if name.startswith("plain") else BRANCH_GAIN
    sd = reference_state_dict(shapes, SEED_WEIGHTS, branch_gain=branch_gain)
    x = reference_input(input_shape, SEED_INPUT)

    store = {
        "model": np.array(name),
        "constructor": np.array(ctor.__name__),
        "kwargs": np.array(json.dumps(kwargs, sort_keys=True)),
        "seed_weights": np.array(SEED_WEIGHTS, dtype=np.int64),
        "branch_gain": np.array(branch_gain, dtype=np.float64),
        "seed_input": np.array(SEED_INPUT, dtype=np.int64),
        "seed_upstream": np.array(SEED_UPSTREAM, dtype=np.int64),
        "input_shape": np.array(input_shape, dtype=np.int64),
        "num_params": np.array(n_params, dtype=np.int64),
        "keys": np.array([k for k, _ in shapes]),
        "shapes": np.array([list(s) + [-1] * (4 - len(s)) for _, s in shapes], dtype=np.int64),
    }

    model = build(ctor, kwargs, sd).eval()
    with torch.no_grad():
        out_eval = model(torch.from_numpy(x)).numpy()
    put(store, "out_eval", out_eval)
    del model

    model = build(ctor, kwargs, sd).train()
    del sd
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    logits = model(xt)
    up = reference_upstream(tuple(logits.shape), SEED_UPSTREAM)
    logits.backward(torch.from_numpy(up))
    put(store, "out_train", logits.detach().numpy())
    put(store, "grad_input", xt.grad.numpy())
    params = dict(model.named_parameters())
    for k in GRAD_KEYS:
        if k in params:
            put(store, "grad/" + k, params[k].grad.numpy())
    float32_errors(store, ctor, kwargs, name, x, up, logits.detach().numpy(), xt.grad.numpy(), params)
    buffers = dict(model.named_buffers())
    for k in RUNNING_KEYS:
        put(store, "running/" + k, buffers[k].numpy())

    path = fixture_path(name, "models")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **store)
    os.replace(tmp, path)
    return path, float(np.abs(out_eval).max()), float(np.abs(logits.detach().numpy()).max())


def total_fixture_bytes():
    root = os.path.dirname(os.path.dirname(fixture_path("x", "models")))
    return sum(os.path.getsize(os.path.join(d, f))
               for d, _, files in os.walk(root) for f in files if f.endswith(".npz"))


def main(names):
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    if not names:
        names = list(MODELS)
    for name in names:
        if name not in MODELS:
            raise SystemExit(f"unknown fixture {name!r}; expected one of {list(MODELS)}")
        t0 = time.time()
        path, eval_max, train_max = make_model_fixture(name)
        print(f"{name:18s} {time.time() - t0:6.1f} s  {os.path.getsize(path) / 1e3:7.1f} kB  "
              f"max|out_eval| {eval_max:9.3g}  max|out_train| {train_max:9.3g}", flush=True)
    total = total_fixture_bytes()
    print(f"all fixtures: {total / 1e6:.2f} MB (limit {MAX_TOTAL_BYTES / 1e6:.0f} MB)")
    if total > MAX_TOTAL_BYTES:
        raise SystemExit("fixtures too big")


if __name__ == "__main__":
    main(sys.argv[1:])
