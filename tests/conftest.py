"""Shared fixtures: every backend test runs on NumPy, and on CuPy when a GPU is present."""
import numpy as np
import pytest

from minires.backend import gpu_available, to_device

BACKENDS = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not gpu_available(),
                                                  reason="no GPU here: CuPy is not installed or no CUDA device answers")),
]


@pytest.fixture(params=BACKENDS)
def device(request):
    """'cpu' (NumPy) or 'cuda' (CuPy); the CuPy case is skipped, with a reason, where there is no GPU."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def away_from_kinks(rng, shape, gap=0.05):
    """Standard-normal values pushed at least ``gap`` away from 0 (ReLU's kink) and, being
    continuous draws, free of ties (max-pool's kink); float64."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + gap, x - gap)


def on(device, a):
    return to_device(a, device)


@pytest.fixture(autouse=True)
def seeded_init():
    """Every test starts from the same layer initialisation, so a run can be repeated exactly.
    (A whole network cannot keep every hidden ReLU input away from 0: with a fixed seed, a
    gradient check that passes once passes always, and one that fails fails the same way.)"""
    from minires.nn import manual_seed
    manual_seed(0)
