"""The checker itself: it passes right backwards, fails wrong ones, and says where; on every
backend ([numpy], [strict], [cupy]: see conftest.py)."""
import numpy as np
import pytest

from helpers import on
from minires import nn
from minires.models import resnet20
from minires.teach import gradcheck
from minires.teach.gradcheck import check_function, check_module, relative_error


def test_relative_error_scale():
    assert relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert relative_error([0.0], [0.0]) == 0.0
    assert abs(relative_error([1.0], [1.1]) - 0.1 / 2.1) < 1e-15


def test_check_function_passes_a_right_gradient_and_fails_a_wrong_one(rng, device):
    x = on(device, rng.standard_normal((3, 4)))
    good = check_function(lambda a: a ** 3, lambda g: 3 * x ** 2 * g, x)
    assert good.ok and good.max_error < 1e-8
    bad = check_function(lambda a: a ** 3, lambda g: 2 * x ** 2 * g, x)  # wrong constant
    assert not bad.ok
    row = bad.rows[0]
    assert row["tensor"] == "input" and row["error"] > 0.1 and len(row["worst"]) == 2


def test_check_function_several_inputs_named(rng, device):
    a, b = on(device, rng.standard_normal((2, 3))), on(device, rng.standard_normal((3, 2)))
    r = check_function(lambda p, q: p @ q, lambda g: (g @ b.T, a.T @ g), a, b, names=["A", "B"])
    assert r.ok and set(r.errors()) == {"A", "B"}


def test_check_function_rejects_wrong_gradient_shapes(rng, device):
    x = on(device, rng.standard_normal((2, 2)))
    with pytest.raises(ValueError, match="should have shape \\(2, 2\\)"):
        check_function(lambda a: a * 2, lambda g: g[0], x)


class WrongLinear(nn.Linear):
    def backward(self, grad_out):
        x, = self.saved
        self.weight.grad += grad_out.T @ x * 0.5  # half the weight gradient
        self.bias.grad += grad_out.sum(axis=0)
        return grad_out @ self.weight.data


def test_check_module_names_the_wrong_parameter(rng, device):
    r = check_module(WrongLinear(4, 3).to(device), on(device, rng.standard_normal((5, 4))))
    assert not r.ok
    errs = r.errors()
    assert errs["weight"] > 0.1 and errs["input"] < 1e-8 and errs["bias"] < 1e-8
    text = str(r)
    assert "weight" in text and "FAIL" in text and "PASS" not in text.splitlines()[-1]


def test_direction_mode_and_subsets(rng, device):
    conv = nn.Conv2d(3, 4, 3, padding=1).to(device)
    x = on(device, rng.standard_normal((2, 3, 6, 6)))
    r = check_module(conv, x, mode="direction")
    assert r.ok and all(row["checked"] == "1 dir" for row in r.rows)
    r = check_module(conv, x, max_entries=10)
    assert r.ok and r.rows[0]["checked"] == 10
    bad = check_module(WrongLinear(4, 3).to(device), on(device, rng.standard_normal((5, 4))), mode="direction")
    assert not bad.ok


def test_check_module_leaves_the_original_untouched(rng, device):
    bn = nn.BatchNorm2d(3).to(device)
    check_module(bn, on(device, rng.standard_normal((2, 3, 2, 2))))
    assert bn.weight.data.dtype == np.float32 and int(bn.num_batches_tracked) == 0


def test_a_kink_inside_the_step_is_re_measured_not_reported_as_a_bug(device, xp):
    """relu(x) at x = 5e-7: a step of 1e-6 straddles the kink (the difference says 0.75, the
    true slope is 1); the re-measurement with eps/10 sees the right slope."""
    x = on(device, np.array([5e-7, 1.0, -1.0]))
    r = check_function(lambda a: xp.maximum(a, 0), lambda g: g * (x > 0), x)
    assert r.ok and np.allclose(r.rows[0]["steps"], [1e-6, 1e-7, 1e-5])
    assert "a kink?" in str(r)


def test_re_measuring_does_not_rescue_a_wrong_backward(rng, device, xp):
    x = on(device, rng.standard_normal(5))
    r = check_function(lambda a: xp.sin(a), lambda g: g * xp.cos(x) * 1.01, x)  # 1% off everywhere
    assert not r.ok and len(r.rows[0]["steps"]) == 3 and r.max_error > 1e-3


# ----- kinks: named in the table, not counted as bugs -----

def test_an_entry_within_every_step_of_a_relu_kink_is_named_and_not_counted(device):
    """relu(x) at x = 5e-8: every step tried (1e-6, 1e-7, 1e-5) carries it across 0, so no
    central difference can measure its slope; the row says so and counts the other entries."""
    x = on(device, np.array([[5e-8, 1.0, -1.0, 0.5]]))
    r = check_module(nn.ReLU(), x)
    row = r.rows[0]
    assert r.ok and row["not_counted"] == 1 and row["kinks"] == ["ReLU"] and row["checked"] == 4
    text = str(r)
    assert "re-measured with eps/10 and eps*10: the step eps straddles a kink in ReLU" in text
    assert "^ 1 entry not counted: near a kink in ReLU (a ReLU input within the step of 0" in text


def test_a_max_pool_tie_is_a_kink_too(device):
    x = on(device, np.array([[[[1.0, 1.0 + 5e-8], [-1.0, -2.0]]]]))  # two entries tie within every step
    r = check_module(nn.MaxPool2d(2), x)
    assert r.ok and r.rows[0]["not_counted"] == 2 and "near a kink in MaxPool2d" in str(r)


class HalfReLU(nn.ReLU):
    def backward(self, grad_out):
        return super().backward(grad_out) * 0.5  # wrong everywhere


def test_a_kink_does_not_hide_a_wrong_backward(device):
    x = on(device, np.array([[5e-8, 1.0, -1.0, 0.5, 2.0]]))
    r = check_module(HalfReLU(), x)
    assert not r.ok and r.rows[0]["not_counted"] == 1 and r.max_error > 0.1


def test_a_direction_that_straddles_a_kink_at_every_step_is_redrawn():
    x = np.array([[5e-8, 1.0]])  # a direction straddles the kink at every step if |its first entry| > 1/2
    r = check_module(nn.ReLU(), x, seed=9, mode="direction")
    assert r.ok and r.rows[0]["discarded"] == 1 and "^ 1 direction(s) discarded: near a kink in ReLU" in str(r)
    r = check_module(nn.ReLU(), x, seed=1, mode="direction")  # three in a row straddle it: nothing measured
    assert not r.ok and r.rows[0]["discarded"] == 3 and "FAIL (not measured: every difference straddles" in str(r)


# ----- the mode for large modules, and progress -----

def test_auto_mode_checks_small_modules_entry_by_entry_and_large_ones_by_direction(rng, monkeypatch):
    conv, x = nn.Conv2d(3, 4, 3, padding=1), rng.standard_normal((2, 3, 6, 6))
    small = check_module(conv, x)
    assert small.mode == "entries" and [row["checked"] for row in small.rows] == [200, 108, 4]
    assert str(small).splitlines()[1].startswith("  tensor")  # no mode line: the table as it always was
    assert small.errors() == check_module(conv, x, mode="entries").errors()
    monkeypatch.setattr(gradcheck, "AUTO_SECONDS", 0.0)  # as if each forward took long
    large = check_module(conv, x)
    assert large.ok and large.mode == "direction" and all(row["checked"] == "1 dir" for row in large.rows)
    assert "one random direction per tensor (mode='auto': entry by entry would take about" in str(large)


def test_progress_lines_on_stderr_for_long_checks_only(rng, capsys, monkeypatch):
    conv, x = nn.Conv2d(3, 4, 3, padding=1), rng.standard_normal((2, 3, 6, 6))
    check_module(conv, x)
    assert capsys.readouterr().err == ""  # a short check says nothing
    monkeypatch.setattr(gradcheck, "PROGRESS_AFTER", 0.0)  # as if it were long
    check_module(conv, x)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("gradient check Conv2d: 3 tensors, entry by entry, about ") and "progress=False" in err[0]
    assert err[-1].startswith("  3/3 tensors (bias), ")
    check_module(conv, x, progress=False)
    assert capsys.readouterr().err == ""


def test_an_unknown_mode_is_a_one_line_error():
    with pytest.raises(ValueError, match="mode must be one of 'auto', 'entries', 'direction', got 'entry'"):
        check_module(nn.ReLU(), np.ones((2, 2)), mode="entry")


def test_a_whole_resnet20_checks_by_direction_by_default_with_progress(capsys, monkeypatch):
    """Issue 27: entry by entry this is about an hour; by default it is one direction per tensor,
    a few seconds on a laptop core (progress lines, forced here, once it should take over 5 s)."""
    monkeypatch.setattr(gradcheck, "PROGRESS_AFTER", 0.0)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32))
    r = check_module(resnet20(), x)
    assert r.ok and r.mode == "direction" and len(r.rows) == 60, str(r)
    err = capsys.readouterr().err
    assert "gradient check CifarResNet: 60 tensors, one direction each" in err and "60/60 tensors (fc.bias)" in err
