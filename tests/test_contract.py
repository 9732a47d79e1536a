"""The module contract, written once in Module: save_for_backward / saved, the guard, clearing,
the random generator, and Dropout as the worked example of a new layer."""
import numpy as np
import pytest

from helpers import away_from_kinks, on
from minires import nn
from minires.teach.gradcheck import check_module
from minires.models import resnet20

LAYERS = [
    (lambda: nn.Conv2d(2, 3, 3), (2, 2, 5, 5)),
    (lambda: nn.BatchNorm2d(2), (2, 2, 3, 3)),
    (lambda: nn.ReLU(), (2, 2, 3, 3)),
    (lambda: nn.MaxPool2d(2), (2, 2, 4, 4)),
    (lambda: nn.AdaptiveAvgPool2d(), (2, 2, 3, 3)),
    (lambda: nn.Linear(4, 3), (2, 4)),
    (lambda: nn.Flatten(), (2, 2, 3, 3)),
    (lambda: nn.Dropout(0.5), (2, 2, 3, 3)),
]


@pytest.mark.parametrize("make,shape", LAYERS, ids=lambda v: getattr(v, "__name__", ""))
def test_backward_without_forward_is_one_clear_error_for_every_layer(make, shape, rng, path):
    layer = make()
    with pytest.raises(RuntimeError, match="backward called without a forward"):
        layer.backward(np.zeros(shape, np.float32))
    with nn.no_grad():
        y = layer(rng.standard_normal(shape).astype(np.float32))
    with pytest.raises(RuntimeError, match="backward called without a forward"):
        layer.backward(np.ones_like(y))


def test_to_clears_what_every_layer_kept(rng):
    model = resnet20()
    model(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    assert sum(m._saved is not None for m in model.modules()) > 40
    model.to(dtype=np.float64)
    assert all(m._saved is None for m in model.modules())


def test_a_new_layer_needs_only_save_for_backward_and_saved(rng):
    class Square(nn.Module):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, grad_out):
            x, = self.saved
            return 2 * x * grad_out

    assert check_module(Square(), rng.standard_normal((3, 4))).ok
    with pytest.raises(RuntimeError, match="Square: backward called without a forward"):
        Square().backward(np.ones(2))


def test_dropout_passes_the_gradient_check_with_the_same_mask_replayed(rng, device):
    x = on(device, rng.standard_normal((4, 3, 5, 5)))
    result = check_module(nn.Dropout(0.3).to(device), x)
    assert result.ok, str(result)
    stack = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Dropout(0.5), nn.BatchNorm2d(2)).to(device)
    result = check_module(stack, on(device, away_from_kinks(rng, (2, 3, 6, 6))), max_entries=50)
    assert result.ok, str(result)


def test_dropout_drops_scales_and_is_deterministic_for_a_seed(rng):
    x = np.ones((200, 50), np.float32)
    d = nn.Dropout(0.25)
    nn.manual_seed(5)
    y1 = d(x)
    nn.manual_seed(5)
    y2 = d(x)
    np.testing.assert_array_equal(y1, y2)
    assert set(np.unique(y1)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y1 == 0).mean() - 0.25) < 0.02
    assert y1.dtype == np.float32
    g = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(d.backward(g), g * y1)         # the gradient goes where the value went
    d.eval()
    assert d(x) is x and d.backward(g) is g                    # identity in evaluation


def test_rng_state_round_trip():
    nn.manual_seed(1)
    state = nn.get_rng_state()
    a = nn.Dropout(0.5)(np.ones((10, 10)))
    nn.set_rng_state(state)
    b = nn.Dropout(0.5)(np.ones((10, 10)))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("p", [-0.1, 1.0, 2, "0.5"])
def test_dropout_refuses_a_bad_probability(p):
    with pytest.raises(ValueError, match="Dropout: p must be a probability in \\[0, 1\\)"):
        nn.Dropout(p)
