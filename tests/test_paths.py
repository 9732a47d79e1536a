"""The two paths: the plain switch, the reading path a student steps through, and every model's
fast path against its plain path (float64, 1e-10)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import minires
from minires import models, nn
from minires.nn import plain
from minires.nn.switches import is_plain

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
from reading_path import LAYOUT_AND_SPEED_FILES, reading_path, render  # noqa: E402
from helpers import forward_backward  # noqa: E402
from reference import MODEL_FIXTURES, fixture_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_plain_switch_nests_and_restores():
    assert not is_plain()
    with plain():
        assert is_plain()
        with plain(False):
            assert not is_plain()
        assert is_plain()
    assert not is_plain()


def test_environment_variable_makes_plain_the_default():
    code = "import minires.nn as nn; print(nn.is_plain())"
    env = dict(os.environ, MINIRES_PLAIN="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    env["MINIRES_PLAIN"] = "0"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name,shape", [("resnet50", (2, 3, 64, 64)), ("resnet20", (2, 3, 32, 32))])
def test_the_plain_reading_path_is_short(name, shape):
    """With the plain switch on, forward + backward enters no workspace, chunking or layout
    helper, at most one file per layer type plus the model, block, module, im2col and backend
    files, and at most 40 distinct minires functions."""
    functions = reading_path(name, shape)
    files = {f for f, _ in functions}
    layer_files = {"nn/conv.py", "nn/norm.py", "nn/activation.py", "nn/pool.py", "nn/linear.py"}
    allowed = layer_files | {"nn/module.py", "nn/im2col.py", "backend.py", "models/blocks.py",
                             "models/resnet.py", "models/cifar.py"}
    assert files <= allowed, files - allowed
    assert not files & LAYOUT_AND_SPEED_FILES
    assert not [q for _, q in functions if q.split(".")[-1].startswith(("conv_forward_fast", "_backward", "batch_chunks",
                                                                           "im2col_into", "col2im_add"))]
    assert len(functions) <= 40, len(functions)


def test_the_fast_path_is_not_the_plain_one():
    """The tracer sees the engine when the switch is off: the reading-path test measures something."""
    files = {f for f, _ in reading_path("resnet20", (2, 3, 32, 32), plain_path=False)}
    assert "engine/memory.py" in files


def test_the_fast_path_enters_no_textbook_function_the_plain_path_does_not():
    """nn/ is the textbook: every function the fast path adds lives in engine/ (or backend.py);
    a layer's forward and backward hand themselves to the engine in one line."""
    plain_path = set(reading_path("resnet50", (2, 3, 64, 64)))
    fast_path = set(reading_path("resnet50", (2, 3, 64, 64), plain_path=False))
    assert not sorted(f"{f}:{q}" for f, q in fast_path - plain_path if f.startswith("nn/"))
    assert {f for f, _ in fast_path - plain_path} <= {"engine/conv.py", "engine/norm.py", "engine/activation.py",
                                                     "engine/pool.py", "engine/memory.py", "engine/im2col.py",
                                                     "backend.py"}


def test_readme_map_shows_the_measured_reading_path():
    """README.md's reading path is the output of tools/reading_path.py, not a copy that can go stale."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    assert render("resnet50", (2, 3, 64, 64)) in readme


def _assert_close(a, b, what, tol=1e-10):
    scale = max(float(np.max(np.abs(b))), 1e-30) if np.size(b) else 1.0
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale, err_msg=what)


CIFAR_NETS = {"resnet20", "resnet20_B", "resnet32", "resnet44", "resnet56", "resnet110",
              "plain20", "plain32", "plain44", "plain56", "plain110"}


def _input_side(name, train):
    """Input size: small, except where training-mode batch norm needs more values per channel.

    The ImageNet nets train on their fixture's 64x48 input: at 32x32 the last stage's batch
    norm would see 2 values per channel, and its gradient amplifies rounding 1e4-fold.
    """
    if name == "resnet1202":
        return 8
    if name in CIFAR_NETS:
        return 16
    return None if train else 32


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", MODEL_FIXTURES)
def test_every_model_fast_equals_plain(name, train):
    """Outputs, the input gradient, every parameter gradient and the running statistics agree
    to 1e-10 (float64) on the fast and the plain path, in training and in evaluation mode.

    One exception, plain110 in training mode (1e-6): a deep plain net with batch norm is
    chaotic in training mode -- rounding differences grow about 1.2x per layer (see
    tests/test_parity.py, where PyTorch and minires, both in float64, differ by 4e-8) -- and
    the two paths add in different orders.
    """
    tol = 1e-6 if name == "plain110" and train else 1e-10
    model, x = fixture_model(name, small=_input_side(name, train))
    model.train(train)
    upstream = np.random.default_rng(7).standard_normal((x.shape[0], model.fc.out_features))
    state = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    fast = forward_backward(model, x, upstream)
    model.load_state_dict(state)                       # the same running statistics to start from
    with plain():
        slow = forward_backward(model, x, upstream)
    _assert_close(fast[0], slow[0], "output", tol)
    _assert_close(fast[1], slow[1], "input gradient", tol)
    for k in fast[2]:
        _assert_close(fast[2][k], slow[2][k], f"gradient of {k}", tol)
    for k in fast[3]:
        _assert_close(fast[3][k], slow[3][k], f"buffer {k}", tol)


def test_backward_refuses_a_path_other_than_its_forwards(rng):
    conv = nn.Conv2d(2, 3, 3)
    y = conv(rng.standard_normal((1, 2, 5, 5)).astype(np.float32))
    with plain(), pytest.raises(RuntimeError, match="forward ran the fast path and the backward runs the plain"):
        conv.backward(np.ones_like(y))


def test_models_module_is_what_the_reading_path_starts_from():
    assert callable(models.resnet50) and minires.nn.plain is plain
