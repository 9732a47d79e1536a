"""Shared fixtures: every backend test runs on NumPy, and on CuPy when a GPU is present."""
import numpy as np
import pytest

from minires.backend import gpu_available

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


@pytest.fixture(autouse=True)
def seeded_init():
    """Every test starts from the same layer initialisation, so a run can be repeated exactly.
    (A whole network cannot keep every hidden ReLU input away from 0: with a fixed seed, a
    gradient check that passes once passes always, and one that fails fails the same way.)"""
    from minires.nn import manual_seed
    manual_seed(0)


@pytest.fixture(params=["fast", "plain"])
def path(request):
    """The layers' fast path (the default) or their plain path (inside ``minires.nn.plain()``):
    a test that takes this fixture runs once on each."""
    from minires.nn import plain
    with plain(request.param == "plain"):
        yield request.param
