"""The checker itself: it passes right backwards, fails wrong ones, and says where; on every
backend ([numpy], [strict], [cupy]: see conftest.py)."""
import numpy as np
import pytest

from helpers import on
from minires import nn
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
