"""minires.teach.exercises: the checkers pass the solutions notebook's answers, fail planted mistakes
with a hint naming the right gradient, and report the exercise notebook as-is as "not done"."""
import json
from pathlib import Path

import numpy as np
import pytest

import minires.teach.exercises as ex
from minires import nn
from test_exercises_wrong_answers import batchnorm_backward as solution_bn  # the right answer

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NAMES = ["relu", "linear", "conv2d", "batchnorm", "basic_block", "maxpool", "projection_block", "grouped_conv2d"]


def run_notebook_code(path):
    """Execute a notebook's code cells in one namespace, in this process (no Jupyter needed)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    ns = {"__name__": "__notebook__"}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            src = "".join(cell["source"])
            src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
            exec(compile(src, f"{path.name}, cell {i}", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def solutions():
    """The answer functions defined by the solutions notebook (it also asserts, itself, that they pass)."""
    return run_notebook_code(TUTORIALS / "07_gradcheck_exercises_solutions.ipynb")


def sol(solutions, name):
    return solutions[f"{name}_backward"]


# ----------------------------------------------------------------------------- right answers pass
@pytest.mark.parametrize("name", NAMES)
def test_solutions_pass(solutions, name, capsys):
    result = ex.check(name, sol(solutions, name))
    out = capsys.readouterr().out
    assert result.ok and result.status == "pass" and bool(result)
    assert "PASS" in out and result.gradcheck.max_error < 1e-8


def test_named_checkers_are_check(solutions):
    for name in NAMES:
        assert getattr(ex, f"check_{name}")(sol(solutions, name), verbose=False).ok


def test_forwards_agree_with_minires_layers():
    """The readable forwards in minires.teach.exercises compute what the library's layers compute."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 5))
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1).to(dtype=np.float64)
    assert np.allclose(ex.conv2d(x, conv.weight.data, conv.bias.data, stride=2, padding=1), conv(x))
    bn = nn.BatchNorm2d(3).to(dtype=np.float64)
    bn.weight.data[...], bn.bias.data[...] = [1.0, 2.0, 0.5], [0.0, -1.0, 0.3]
    assert np.allclose(ex.batchnorm(x, bn.weight.data, bn.bias.data), bn(x))
    assert np.allclose(ex.linear(x[:, :, 0, 0], np.ones((2, 3)), np.zeros(2)), x[:, :, 0, 0].sum(1, keepdims=True))


# ----------------------------------------------------------------------------- planted mistakes
def wrong(solutions, name, edit):
    """A backward that returns the solution's gradients, changed by ``edit(grads, *args) -> grads``."""
    right = sol(solutions, name)

    def backward(*args, **kw):
        out = right(*args, **kw)
        return edit(list(out) if isinstance(out, tuple) else out, *args, **kw)
    backward.__name__ = f"wrong_{name}"
    return backward


def bn_parts(x, gamma, dy, eps=1e-5):
    s = 1 / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + eps)
    xhat = (x - x.mean(axis=(0, 2, 3), keepdims=True)) * s
    dxhat = dy * gamma.reshape(1, -1, 1, 1)
    return s, xhat, dxhat


def no_mean_term(g, x, gamma, beta, dy, eps=1e-5):
    s, xhat, dxhat = bn_parts(x, gamma, dy, eps)
    return [g[0] + s * dxhat.mean(axis=(0, 2, 3), keepdims=True), g[1], g[2]]


def no_variance_term(g, x, gamma, beta, dy, eps=1e-5):
    s, xhat, dxhat = bn_parts(x, gamma, dy, eps)
    return [g[0] + s * xhat * (dxhat * xhat).mean(axis=(0, 2, 3), keepdims=True), g[1], g[2]]


def no_shortcut(g, x, W1, g1, b1, W2, g2, b2, dy):
    return [g[0] - dy * (ex.basic_block(x, W1, g1, b1, W2, g2, b2) > 0)] + g[1:]


def overwriting_col2im(g, x, W, b, dy, stride=1, padding=0):
    return [ex.EXERCISES["conv2d"]["wrong"](x, W, b, dy, stride, padding)[0][1], g[1], g[2]]


PLANTED = [  # exercise, edit, the gradient the hint must name, words the hint must contain
    ("batchnorm", no_mean_term, "dx", "mean term"),
    ("batchnorm", no_variance_term, "dx", "variance term"),
    ("batchnorm", lambda g, x, gamma, beta, dy: [g[0], (dy * x).sum(axis=(0, 2, 3)), g[2]], "dgamma", "NORMALISED"),
    ("linear", lambda g, x, W, b, dy: [g[0], x.T @ dy, g[2]], "dW", "transposed"),
    ("linear", lambda g, x, W, b, dy: [g[0], g[1], dy.mean(axis=0)], "db", "SUM"),
    ("linear", lambda g, *a: [g[0], 0.5 * g[1], g[2]], "dW", "scaled by 0.5"),
    ("relu", lambda g, x, dy: dy, "dx", "x <= 0"),
    ("relu", lambda g, x, dy: g * (x > 0.3), "dx", "only where x > 0"),
    ("basic_block", no_shortcut, "dx", "shortcut"),
    ("basic_block", lambda g, *a: [g[0]] + [g[1]] + [g[2] * 0] + g[3:], "dgamma1", "placeholder"),
    ("conv2d", overwriting_col2im, "dx", "ADD"),
    ("conv2d", lambda g, *a, **k: [g[0], g[1][:, :, ::-1, ::-1], g[2]], "dW", "flipped"),
    ("conv2d", lambda g, *a, **k: [g[0].transpose(1, 0, 2, 3), g[1], g[2]], "dx", "swapped"),
]


@pytest.mark.parametrize("name, edit, tensor, words", PLANTED, ids=[f"{p[0]}-{p[3]}" for p in PLANTED])
def test_planted_mistakes_fail_with_a_hint_naming_the_tensor(solutions, name, edit, tensor, words, capsys):
    result = ex.check(name, wrong(solutions, name, edit))
    out = capsys.readouterr().out
    assert not result.ok and result.status == "fail"
    assert result.tensor == tensor
    hint = result.hints[0]
    assert hint.startswith(tensor) and words in hint, hint
    assert "FAIL" in out and words in out


def test_only_the_wrong_tensor_is_reported_wrong(solutions):
    result = ex.check("basic_block", wrong(solutions, "basic_block", no_shortcut), verbose=False)
    assert result.gradcheck.errors()["dx"] > 0.1
    assert all(err < 1e-8 for t, err in result.gradcheck.errors().items() if t != "dx")
    assert result.report.count("WRONG") == 1 and "worst entries" in result.report


def test_a_crash_inside_the_learners_code_is_reported_not_raised(capsys):
    def linear_backward(x, W, b, dy):
        return dy @ W.T, dy.T @ x, dy.sum(axis=0)  # dy @ W.T: (4, 5) @ (3, 5) cannot multiply
    result = ex.check_linear(linear_backward)
    out = capsys.readouterr().out
    assert result.status == "error" and not result.ok
    assert "ValueError" in out and "dy @ W.T" in out and "W (5, 3)" in out and "dy (4, 5)" in out


def test_wrong_number_or_kind_of_gradients():
    r = ex.check_linear(lambda x, W, b, dy: (dy @ W, dy.T @ x), verbose=False)
    assert r.status == "fail" and "should return 3 arrays (dx, dW, db), got 2 values" in r.report
    r = ex.check_conv2d(lambda x, W, b, dy, stride=1, padding=0: (x, W, None), verbose=False)
    assert r.status == "fail" and r.tensor == "db" and "should be an array of shape (4,), got NoneType" in r.report
    r = ex.check_relu(lambda x, dy: dy[0], verbose=False)
    assert r.tensor == "dx" and "should have shape (3, 4, 5)" in r.report


def test_nan_and_sign_hints():
    with np.errstate(divide="ignore", invalid="ignore"):
        r = ex.check_relu(lambda x, dy: dy * (x > 0) / 0.0, verbose=False)
    assert "NaN or inf" in r.hints[0]
    r = ex.check_linear(lambda x, W, b, dy: (-(dy @ W), dy.T @ x, dy.sum(0)), verbose=False)
    assert r.tensor == "dx" and "wrong sign" in r.hints[0]


def test_not_done_is_reported_and_names_an_unwritten_helper(capsys):
    def relu_backward(x, dy):
        raise NotImplementedError("relu_backward: not written yet")

    def basic_block_backward(*args):
        return relu_backward(None, None)
    r = ex.check_relu(relu_backward)
    assert r.status == "not done" and not r.ok and "relu_backward: not done yet" in capsys.readouterr().out
    r = ex.check_basic_block(basic_block_backward, verbose=False)
    assert r.status == "not done" and "relu_backward: not written yet" in r.report


def test_bad_calls_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown exercise 'softmax'"):
        ex.check("softmax", lambda x, dy: dy)
    with pytest.raises(TypeError, match="must be your backward function"):
        ex.check_relu("dy * (x > 0)")


def test_the_learners_arrays_are_copies(solutions):
    """A backward that edits its inputs in place must not corrupt the numerical gradients."""
    def relu_backward(x, dy):
        dy[x <= 0] = 0
        x[...] = 0
        return dy
    assert ex.check_relu(relu_backward, verbose=False).ok


def test_summary(solutions, capsys):
    results = {name: ex.check(name, sol(solutions, name), verbose=False) for name in NAMES[:2]}

    def conv2d_backward(x, W, b, dy, stride=1, padding=0):
        raise NotImplementedError
    results["conv2d"] = ex.check_conv2d(conv2d_backward, verbose=False)
    ex.summary(results)
    out = capsys.readouterr().out
    assert "relu             pass" in out and "conv2d           not done" in out and "2 of 3 exercises pass" in out


# ----------------------------------------------------------------------------- the exercise notebook
def test_exercise_notebook_runs_as_is_and_reports_not_done(capsys):
    ns = run_notebook_code(TUTORIALS / "07_gradcheck_exercises.ipynb")
    out = capsys.readouterr().out
    assert out.count("not done yet") == len(NAMES)
    assert {name: r.status for name, r in ns["results"].items()} == {name: "not done" for name in NAMES}
    assert f"0 of {len(NAMES)} exercises pass" in out


def test_exercise_notebook_holds_placeholders_and_no_answers():
    def code(path):
        nb = json.loads(path.read_text(encoding="utf-8"))
        return "".join("".join(c["source"]) + "\n" for c in nb["cells"] if c["cell_type"] == "code")
    exercises, solutions = code(TUTORIALS / "07_gradcheck_exercises.ipynb"), code(
        TUTORIALS / "07_gradcheck_exercises_solutions.ipynb")
    assert exercises.count("raise NotImplementedError") == len(NAMES) and "# YOUR CODE HERE" in exercises
    assert "NotImplementedError" not in solutions and "SOLUTION" not in solutions + exercises
    assert "dxhat.mean" not in exercises and "dxhat.mean" in solutions


# ----------------------------------------------------------------------------- wrong answers as students write them
from minires.nn import col2im, im2col  # noqa: E402


def _conv_student(transpose_dW=False, mixed_dy=False, assign_windows=False, col2im_stride=None):
    """A learner's conv2d_backward, whole, with the chosen mistakes in it."""
    def conv2d_backward(x, W, b, dy, stride=1, padding=0):
        N, C, H, Wd = x.shape
        O, _, KH, KW = W.shape
        OH, OW = dy.shape[2:]
        X_col = im2col(x.transpose(1, 0, 2, 3), KH, KW, stride, stride, padding, padding).reshape(C * KH * KW, -1)
        dY = dy.reshape(O, -1) if mixed_dy else dy.transpose(1, 0, 2, 3).reshape(O, -1)
        dW = (X_col @ dY.T).reshape(W.shape) if transpose_dW else (dY @ X_col.T).reshape(W.shape)
        dcol = (W.reshape(O, -1).T @ dY).reshape(C, KH, KW, N, OH, OW)
        if assign_windows:  # window by window, '=' where '+=' belongs
            dx_pad = np.zeros((N, C, H + 2 * padding, Wd + 2 * padding))
            for p in range(OH):
                for q in range(OW):
                    dx_pad[:, :, p * stride:p * stride + KH, q * stride:q * stride + KW] = \
                        dcol[:, :, :, :, p, q].transpose(3, 0, 1, 2)
            dx = dx_pad[:, :, padding:padding + H, padding:padding + Wd]
        else:
            s = col2im_stride or stride
            dx = col2im(dcol, H, Wd, s, s, padding, padding).transpose(1, 0, 2, 3)
        return dx, dW, None if b is None else dy.sum(axis=(0, 2, 3))
    return conv2d_backward


def test_col2im_assigning_window_by_window_is_named_not_blamed_on_stride():
    r = ex.check_conv2d(_conv_student(assign_windows=True), verbose=False)
    assert r.tensor == "dx" and "stride=1" in r.report
    assert "overlapping windows are lost" in r.hints[0] and "stride" not in r.hints[0], r.hints[0]


def test_dW_transposed_behind_a_reshape_is_named():
    r = ex.check_conv2d(_conv_student(transpose_dW=True), verbose=False)
    assert r.tensor == "dW" and "TRANSPOSED" in r.hints[0] and "dY @ X_col.T" in r.hints[0], r.hints


def test_dy_reshaped_without_moving_O_first_is_named_for_dx_and_dW():
    r = ex.check_conv2d(_conv_student(mixed_dy=True), verbose=False)
    assert [h.split(":")[0] for h in r.hints] == ["dx", "dW"]
    assert all("straight from (N, O, OH, OW)" in h and "transpose(1, 0, 2, 3)" in h for h in r.hints), r.hints
    r = ex.check_conv2d(_conv_student(mixed_dy=True, transpose_dW=True), verbose=False)
    assert "two mistakes" in r.hints[1], r.hints


def test_stride_is_suggested_only_once_stride_1_passes():
    r = ex.check_conv2d(_conv_student(col2im_stride=1), verbose=False)  # right at stride 1, wrong at 2
    assert "stride=2" in r.report and "stride" in r.hints[0] and "stride-1 case passes" in r.hints[0]

    def conv2d_backward(x, W, b, dy, stride=1, padding=0):  # wrong at stride 1 in no known way
        dx, dW, db = _conv_student()(x, W, b, dy, stride, padding)
        return dx + 0.1 * np.sin(np.arange(dx.size)).reshape(dx.shape), dW, db
    r = ex.check_conv2d(conv2d_backward, verbose=False)
    assert "stride=1" in r.report and r.tensor == "dx" and "stride" not in r.hints[0], r.hints


def test_batchnorm_with_the_unbiased_variance_is_named():
    def batchnorm_backward(x, gamma, beta, dy, eps=1e-5):
        axes = (0, 2, 3)
        s = 1 / np.sqrt(x.var(axis=axes, ddof=1, keepdims=True) + eps)
        xhat = (x - x.mean(axis=axes, keepdims=True)) * s
        dxhat = dy * gamma.reshape(1, -1, 1, 1)
        dx = s * (dxhat - dxhat.mean(axis=axes, keepdims=True) - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True))
        return dx, (dy * xhat).sum(axis=axes), dy.sum(axis=axes)
    r = ex.check_batchnorm(batchnorm_backward, verbose=False)
    assert [h.split(":")[0] for h in r.hints] == ["dx", "dgamma"]
    assert all("ddof=1" in h and "sqrt((M-1)/M)" in h for h in r.hints), r.hints

    def dgamma_scaled(x, gamma, beta, dy, eps=1e-5):  # recognised by the factor alone
        dx, dgamma, dbeta = solution_bn(x, gamma, beta, dy, eps)
        M = x.size // x.shape[1]
        return dx, dgamma * np.sqrt((M - 1) / M), dbeta
    r = ex.check_batchnorm(dgamma_scaled, verbose=False)
    assert r.tensor == "dgamma" and "ddof=1" in r.hints[0], r.hints


def test_a_block_with_layer_1_wrong_says_where(solutions):
    relu_b, bn_b, conv_b = (solutions[f"{n}_backward"] for n in ("relu", "batchnorm", "conv2d"))

    def basic_block_backward(x, W1, gamma1, beta1, W2, gamma2, beta2, dy):
        a1 = ex.conv2d(x, W1, padding=1)
        b1 = ex.batchnorm(a1, gamma1, beta1)
        h = ex.relu(b1)
        a2 = ex.conv2d(h, W2, padding=1)
        g = relu_b(ex.batchnorm(a2, gamma2, beta2) + x, dy)
        da2, dgamma2, dbeta2 = bn_b(a2, gamma2, beta2, g)
        dh, dW2, _ = conv_b(h, W2, None, da2, padding=1)
        da1, dgamma1, dbeta1 = bn_b(a1, gamma1, beta1, relu_b(a1, dh))  # the mask from conv1's output: wrong
        dx_main, dW1, _ = conv_b(x, W1, None, da1, padding=1)
        return dx_main + g, dW1, dgamma1, dbeta1, dW2, dgamma2, dbeta2
    r = ex.check_basic_block(basic_block_backward, verbose=False)
    errors = r.gradcheck.errors()
    assert all(errors[t] < 1e-8 for t in ("dW2", "dgamma2", "dbeta2")) and errors["dgamma1"] > 1e-3
    layer1 = [h for h in r.hints if h.startswith(("dW1", "dgamma1", "dbeta1"))]
    assert layer1 and all("layer 2's gradients" in h and "inner ReLU" in h for h in layer1), r.hints


# ----------------------------------------------------------------------------- max-pool's ties, the projection block
def test_maxpool_to_every_tied_maximum_passes_the_gradient_check_and_fails_the_rule(solutions):
    ns = run_notebook_code(TUTORIALS / "07_gradcheck_exercises_solutions.ipynb")
    every_tie = ns["maxpool_backward_every_tie"]
    r = ex.check_maxpool(every_tie, verbose=False)
    assert r.status == "fail" and r.gradcheck.ok and r.tensor == "dx"  # the gradient check alone passes
    assert "adds up to" in r.hints[0] and "not 1" in r.hints[0] and "first" in r.hints[0], r.hints


def test_maxpool_split_equally_among_ties_passes_the_rule(solutions):
    def maxpool_backward(x, dy, kernel_size=2, stride=2, padding=0):
        k, s, p = kernel_size, stride, padding
        x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
        dx = np.zeros(x_pad.shape)
        for i in range(dy.shape[2]):
            for j in range(dy.shape[3]):
                w = x_pad[:, :, i * s:i * s + k, j * s:j * s + k]
                m = w == w.max(axis=(2, 3), keepdims=True)
                dx[:, :, i * s:i * s + k, j * s:j * s + k] += m / m.sum(axis=(2, 3), keepdims=True) * dy[:, :, i:i + 1, j:j + 1]
        return dx[:, :, p:p + x.shape[2], p:p + x.shape[3]]
    assert ex.check_maxpool(maxpool_backward, verbose=False).ok


def test_maxpool_mistakes(solutions):
    def everywhere(x, dy, kernel_size=2, stride=2, padding=0):
        return np.repeat(np.repeat(dy, 2, axis=2), 2, axis=3)
    r = ex.check_maxpool(everywhere, verbose=False)
    assert r.tensor == "dx" and "every position of the window" in r.hints[0], r.hints

    def assigning(x, dy, kernel_size=2, stride=2, padding=0):  # '=' where overlapping windows must add
        k, s, p = kernel_size, stride, padding
        x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
        dx = np.zeros(x_pad.shape)
        n, c = np.indices(dy.shape[:2])
        for i in range(dy.shape[2]):
            for j in range(dy.shape[3]):
                a, b = np.unravel_index(x_pad[:, :, i * s:i * s + k, j * s:j * s + k].reshape(*dy.shape[:2], -1)
                                        .argmax(axis=2), (k, k))
                dx[n, c, i * s + a, j * s + b] = dy[:, :, i, j]
        return dx[:, :, p:p + x.shape[2], p:p + x.shape[3]]
    r = ex.check_maxpool(assigning, verbose=False)
    assert "kernel_size=3" in r.report and "ADD" in r.hints[0] and "overlap" in r.hints[0], r.hints

    def crashing(x, dy, kernel_size=2, stride=2, padding=0):
        if (x == np.round(x)).all():
            raise ValueError("ties!")
        return sol(solutions, "maxpool")(x, dy, kernel_size, stride, padding)
    r = ex.check_maxpool(crashing, verbose=False)
    assert r.status == "fail" and "raised ValueError: ties!" in r.hints[0]


def no_projection_shortcut(g, x, W1, g1, b1, W2, g2, b2, Ws, gs, bs, dy):
    from minires.teach.exercises_blocks import projection_parts
    dz = dy * (ex.projection_block(x, W1, g1, b1, W2, g2, b2, Ws, gs, bs) > 0)
    return [g[0] - projection_parts(x, W1, g1, b1, W2, g2, b2, Ws, gs, bs, dz)["dx_short"]] + g[1:]


def test_projection_block_mistakes(solutions):
    r = ex.check_projection_block(wrong(solutions, "projection_block", no_projection_shortcut), verbose=False)
    assert r.tensor == "dx" and "projection shortcut" in r.hints[0] and r.report.count("WRONG") == 1

    def no_final_relu_on_shortcut(g, x, W1, g1, b1, W2, g2, b2, Ws, gs, bs, dy):
        from minires.teach.exercises_blocks import projection_parts
        unmasked = projection_parts(x, W1, g1, b1, W2, g2, b2, Ws, gs, bs, dy)
        return g[:7] + [unmasked["dWs"], unmasked["dgammas"], unmasked["dbetas"]]
    r = ex.check_projection_block(wrong(solutions, "projection_block", no_final_relu_on_shortcut), verbose=False)
    assert r.tensor == "dWs" and all("final ReLU" in h for h in r.hints), r.hints


def test_grouped_conv_slice_off_by_one_group(solutions):
    def shifted(g, x, W, dy, groups=4):
        C = x.shape[1]
        return [np.roll(g[0], C // groups, axis=1), g[1]]  # group g's dx written into group g+1's channels
    r = ex.check_grouped_conv2d(wrong(solutions, "grouped_conv2d", shifted), verbose=False)
    assert r.tensor == "dx" and "another group's channels" in r.hints[0] and r.report.count("WRONG") == 1
