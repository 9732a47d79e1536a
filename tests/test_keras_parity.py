"""Keras parity: the same weights give Keras's outputs, gradients and moving statistics.

The fixtures in tests/fixtures/keras were written by tools/make_keras_fixtures.py with Keras 3
on JAX, in float64 (Keras is never imported here). The weights are rebuilt in Keras's layout
(tests/keras_reference.py) and go through minires's own Keras mapping
(``minires.keras.weights.state_dict_from_keras``: HWIO -> OIHW, gamma/beta/moving statistics),
so these tests check the mapping, the architecture and the arithmetic at once. The input is
NHWC, fed to a ``data_format="channels_last"`` model; its gradient comes back NHWC.

Tolerance 1e-9 relative to each tensor's scale: float64 on both sides.
"""
import numpy as np
import pytest

from keras_reference import (KERAS_FIXTURES, keras_reference_input, keras_reference_upstream, keras_reference_weights,
                             model_layer_roles)
from minires.zoo import get_model
from minires.keras.weights import state_dict_from_keras
from reference import fixture_pairs, fixture_path, load_fixture

NAMES = [n for n in KERAS_FIXTURES if __import__("os").path.exists(fixture_path(n, "keras"))]
TOL = 1e-9


def rel_err(expected, actual):
    expected, actual = np.asarray(expected, np.float64), np.asarray(actual, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def check(fx, entry, actual, tol=TOL):
    expected, actual = fixture_pairs(fx, entry, actual)
    if np.max(np.abs(expected)) < 1e-12:
        # A conv bias that a training-mode batch norm follows (keras.applications' v1 stem): the
        # batch mean takes it back out, its true gradient is 0 and both sides hold rounding noise
        assert np.max(np.abs(actual)) < 1e-12, f"{fx['model']} {entry}: should be 0, got {np.max(np.abs(actual)):.1e}"
        return
    err = rel_err(expected, actual)
    assert err < tol, f"{fx['model']} {entry}: relative error {err:.2e} >= {tol:.0e}"


def build(name, data_format="channels_last"):
    model = get_model(name, data_format=data_format).to(dtype=np.float64)
    model.load_state_dict(state_dict_from_keras(model, keras_reference_weights(model_layer_roles(model))))
    return model


def test_every_keras_fixture_is_there():
    assert NAMES == list(KERAS_FIXTURES), f"missing fixtures: {set(KERAS_FIXTURES) - set(NAMES)}"


@pytest.mark.parametrize("name", NAMES)
def test_same_layers_and_parameter_count_as_keras(name):
    fx = load_fixture(name, "keras")
    model = get_model(name)
    ours = [f"{n.replace('/', '_')}/{r}" for n, rs in model_layer_roles(model).items() for r, _ in rs]
    assert sorted(ours) == sorted(str(s) for s in fx["layer_roles"])
    shapes = {f"{n.replace('/', '_')}/{r}": s for n, rs in model_layer_roles(model).items() for r, s in rs}
    for key, row in zip(fx["layer_roles"], fx["layer_shapes"]):
        assert shapes[str(key)] == tuple(int(v) for v in row if v >= 0), key
    assert model.keras_param_count() == int(fx["keras_param_count"])


@pytest.mark.parametrize("name", NAMES)
def test_eval_output_matches_keras(name):
    fx = load_fixture(name, "keras")
    model = build(name).eval()
    check(fx, "out_eval", model(keras_reference_input(tuple(fx["input_shape"]), int(fx["seed_input"]))))


@pytest.mark.parametrize("name", NAMES)
def test_train_mode_output_gradients_and_moving_statistics_match_keras(name):
    fx = load_fixture(name, "keras")
    model = build(name).train()
    x = keras_reference_input(tuple(fx["input_shape"]), int(fx["seed_input"]))
    y = model(x)
    check(fx, "out_train", y)
    dx = model.backward(keras_reference_upstream(y.shape, int(fx["seed_upstream"])))
    assert dx.shape == tuple(fx["input_shape"])                      # NHWC, as the input
    check(fx, "grad_input", dx, 1e-8)
    modules = dict((n.replace("/", "_"), m) for n, m in model.keras_layers())
    names = {e.split("__")[0] for e in fx if e.startswith(("grad/", "moving/"))}
    assert len(names) >= 5
    for entry in sorted(names):
        kind, layer, role = entry.split("/")
        m = modules[layer]
        if kind == "moving":
            actual = m.running_mean if role == "moving_mean" else m.running_var
        else:
            attr = {"kernel": "weight", "gamma": "weight", "bias": "bias", "beta": "bias"}[role]
            actual = getattr(m, attr).grad
            if role == "kernel":
                actual = actual.transpose(2, 3, 1, 0) if actual.ndim == 4 else actual.T   # -> Keras's layout
        check(fx, entry, actual, 1e-8)


def test_channels_first_gives_the_same_numbers():
    name = NAMES[0]
    fx = load_fixture(name, "keras")
    model = build(name, data_format="channels_first").eval()
    x = keras_reference_input(tuple(fx["input_shape"]), int(fx["seed_input"]))
    check(fx, "out_eval", model(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
