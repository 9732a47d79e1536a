"""Regenerate tests/fixtures/explain/: PyTorch's saliency maps and Grad-CAM maps (issue 29).

Maintainers only; needs torch (the tests read the .npz files and never import torch):

    /tmp/torchvenv/bin/python tools/make_explain_fixtures.py              # resnet18 and resnet20
    /tmp/torchvenv/bin/python tools/make_explain_fixtures.py resnet20     # only some

For each model, PyTorch's reference net (tools/torch_reference.py) gets the seeded weights of
tests/reference.py (seed 0, branch gain 0.1, as the model fixtures; batch-norm gamma, beta and
running statistics are random too, so eval mode is not the identity) -- the weights are rebuilt
from the seed, never stored (ResNet-18's would be ~45 MB). In eval mode and float64, with
autograd, for a target class t_n per image n:

    saliency[n, i, j] = max_c |d logits[n, t_n] / d x[n, c, i, j]|                 (N, H, W)
    A = the output of the last stage (layer4 for resnet18, layer3 for resnet20)   (N, C, h, w)
    alpha[n, k]       = mean over (i, j) of d logits[n, t_n] / d A[n, k, i, j]    (N, C)
    cam[n, i, j]      = relu(sum_k alpha[n, k] * A[n, k, i, j])                    (N, h, w)

(the raw Grad-CAM map: not upsampled, not normalised). Eval mode keeps the images of a batch
independent, so one backward pass of sum_n logits[n, t_n] gives every image's gradient. Two
sets of targets: fixed ones (in MODELS below; they must differ from the prediction) and the
predicted class, argmax of the logits (what target=None means).

The same is run once more in float32 (weights and input cast), and how far PyTorch's own
float32 lands from its float64 is stored as 'float32_err/<entry>': the yardstick for
minires's float32 parity. Entries of tests/fixtures/explain/<name>.npz:

    model, constructor, kwargs (JSON), layer     str    'resnet18', 'resnet18', '{}', 'layer4'
    seed_weights, branch_gain                    ()     0, 0.1: reference_state_dict(...)
    keys, shapes                                 (K,), (K, 4)  the state_dict (reference.fixture_state_shapes)
    seed_input, input_shape, x                   x float64, the input (reference_input(input_shape, 1))
    targets, predicted                           int64 (N,)    the fixed targets, argmax of logits
    logits                                       float64 (N, classes), eval mode
    margin                                       float64 (N,)  top-1 minus top-2 logit (argmax is stable)
    saliency/targets, saliency/predicted         float64 (N, H, W)
    cam/targets, cam/predicted                   float64 (N, h, w)
    cam_min_abs/<which>                          float64 ()    min |sum_k alpha A| before the ReLU,
                                                               relative to its max: no entry sits on the kink
    cam_positive/<which>                         float64 (N,)  the fraction of each map above 0 (never 0)
    relu_min_abs                                 float64 ()    the smallest |input| of any ReLU in the
                                                               float64 forward (how near a kink the net runs)
    float32_err/<entry>                          float64 ()    max|torch32 - torch64| / max|torch64|
    torch_version                                str
The script fails if the directory passes 2 MB (0.58 MB now); run twice, it writes byte-identical
files (torch 2.13.0+cpu, ~15 s).
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
from reference import fixture_path, reference_input, reference_state_dict  # noqa: E402

SEED_WEIGHTS = 0
SEED_INPUT = 1
BRANCH_GAIN = 0.1
MAX_TOTAL_BYTES = 2_000_000

# name -> (constructor, kwargs, input shape, the Grad-CAM layer, fixed targets).
# ResNet-18's input is not square (a 2 x 3 Grad-CAM map) so that a swap of H and W fails; its fixed
# targets give maps that are partly zero (the ReLU matters) -- with (3, 7) both were all zero.
MODELS = {
    "resnet18": (R.resnet18, {}, (2, 3, 64, 96), "layer4", (6, 0)),
    "resnet20": (R.resnet20, {"shortcut": "A"}, (2, 3, 32, 32), "layer3", (3, 7)),
}


def build(ctor, kwargs, numpy_sd, dtype):
    """The torch model in eval mode, weights loaded strictly and cast to `dtype`."""
    model = ctor(**kwargs).to(dtype)
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32 if dtype == torch.float32 else v.dtype)
                                               if v.dtype.kind == "f" else v.copy())
                           for k, v in numpy_sd.items()}, strict=True)
    return model.eval()


def explain(model, layer, x, targets):
    """(logits, saliency, cam, pre-ReLU cam, targets, smallest |ReLU input|) for the given targets
    (None: the predicted class)."""
    captured, relu_inputs = {}, []
    hooks = [getattr(model, layer).register_forward_hook(lambda m, i, out: captured.update(A=out))]
    hooks += [m.register_forward_pre_hook(lambda m, i: relu_inputs.append(i[0].detach().abs().min()))
              for m in model.modules() if isinstance(m, torch.nn.ReLU)]   # before the in-place ReLU
    xt = torch.from_numpy(x).requires_grad_(True)
    logits = model(xt)
    for hook in hooks:
        hook.remove()
    A = captured["A"]
    t = logits.argmax(1) if targets is None else torch.as_tensor(np.asarray(targets), dtype=torch.long)
    score = logits.gather(1, t[:, None]).sum()    # images are independent in eval mode
    dx, dA = torch.autograd.grad(score, [xt, A])
    saliency = dx.abs().amax(dim=1)                                   # (N, H, W)
    alpha = dA.mean(dim=(2, 3), keepdim=True)                         # (N, C, 1, 1)
    raw = (alpha * A).sum(dim=1)                                      # (N, h, w)
    return (logits.detach().numpy(), saliency.numpy(), torch.relu(raw).detach().numpy(),
            raw.detach().numpy(), t.numpy(), float(min(relu_inputs)))


def rel_err(expected, actual):
    expected, actual = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def make(name):
    ctor, kwargs, input_shape, layer, fixed = MODELS[name]
    shapes = [(k, tuple(v.shape)) for k, v in ctor(**kwargs).state_dict().items()]
    sd = reference_state_dict(shapes, SEED_WEIGHTS, branch_gain=BRANCH_GAIN)
    x = reference_input(input_shape, SEED_INPUT)
    store = {
        "model": np.array(name), "constructor": np.array(ctor.__name__),
        "kwargs": np.array(json.dumps(kwargs, sort_keys=True)), "layer": np.array(layer),
        "seed_weights": np.array(SEED_WEIGHTS, dtype=np.int64),
        "branch_gain": np.array(BRANCH_GAIN, dtype=np.float64),
        "keys": np.array([k for k, _ in shapes]),
        "shapes": np.array([list(s) + [-1] * (4 - len(s)) for _, s in shapes], dtype=np.int64),
        "seed_input": np.array(SEED_INPUT, dtype=np.int64),
        "input_shape": np.array(input_shape, dtype=np.int64), "x": x,
        "targets": np.array(fixed, dtype=np.int64), "torch_version": np.array(torch.__version__),
    }
    m64, m32 = build(ctor, kwargs, sd, torch.float64), build(ctor, kwargs, sd, torch.float32)
    for which, targets in (("targets", fixed), ("predicted", None)):
        logits, sal, cam, raw, t, relu_min_abs = explain(m64, layer, x, targets)
        logits32, sal32, cam32, _, t32, _ = explain(m32, layer, x.astype(np.float32), targets)
        if which == "predicted":
            top2 = np.sort(logits, axis=1)[:, -2:]
            store["predicted"], store["margin"] = t.astype(np.int64), top2[:, 1] - top2[:, 0]
            if not np.array_equal(t, t32) or np.min(store["margin"]) < 1e-3 * np.abs(logits).max():
                raise AssertionError(f"{name}: the top two logits nearly tie; float32 may predict another class")
            if np.any(t == np.asarray(fixed)):
                raise AssertionError(f"{name}: a fixed target {fixed} equals the prediction {t}; pick others")
        store["logits"] = logits
        store["relu_min_abs"] = np.array(relu_min_abs)
        store["float32_err/logits"] = np.array(rel_err(logits, logits32))
        store["saliency/" + which], store["cam/" + which] = sal, cam
        store["float32_err/saliency/" + which] = np.array(rel_err(sal, sal32))
        store["float32_err/cam/" + which] = np.array(rel_err(cam, cam32))
        store["cam_min_abs/" + which] = np.array(np.abs(raw).min() / np.abs(raw).max())
        store["cam_positive/" + which] = (raw > 0).reshape(len(raw), -1).mean(axis=1)
        if np.any(store["cam_positive/" + which] == 0):
            raise AssertionError(f"{name} ({which}): a Grad-CAM map is all zero; nothing to compare")
    path = fixture_path(name, "explain")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **store)
    os.replace(tmp, path)
    return path, store


def both(store, key):
    """'<targets> <predicted>' of a per-target entry, rounded, for the summary line."""
    return " ".join(str(np.round(store[f"{key}/{which}"], 3).tolist()) for which in ("targets", "predicted"))


def main(names):
    torch.manual_seed(0)
    for name in names or list(MODELS):
        if name not in MODELS:
            raise SystemExit(f"unknown fixture {name!r}; expected one of {list(MODELS)}")
        t0 = time.time()
        path, s = make(name)
        errs = "  ".join(f"{k[len('float32_err/'):]} {float(v):.1e}" for k, v in s.items()
                         if k.startswith("float32_err/"))
        print(f"{name}: {time.time() - t0:.1f} s, {os.path.getsize(path) / 1e3:.1f} kB, "
              f"cam {s['cam/targets'].shape[1:]}, predicted {s['predicted'].tolist()}, "
              f"margin {np.round(s['margin'], 3).tolist()}, max|logits| {np.abs(s['logits']).max():.3g}, "
              f"min|ReLU input| {float(s['relu_min_abs']):.1e}\n"
              f"  cam_min_abs {both(s, 'cam_min_abs')}, cam > 0 {both(s, 'cam_positive')}\n"
              f"  torch float32 vs float64: {errs}", flush=True)
    folder = os.path.dirname(fixture_path("x", "explain"))
    total = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"tests/fixtures/explain: {total / 1e6:.2f} MB (limit {MAX_TOTAL_BYTES / 1e6:.0f} MB), "
          f"torch {torch.__version__}")
    if total > MAX_TOTAL_BYTES:
        raise SystemExit("fixtures too big")


if __name__ == "__main__":
    main(sys.argv[1:])
