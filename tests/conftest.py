"""Shared fixtures: every backend test runs three ways, ids [numpy], [strict] and [cupy].

- [numpy]  the CPU: device 'cpu', NumPy arrays;
- [strict] device 'cuda' served by tests/strict_cupy.py, a CPU stand-in for CuPy that refuses
           what CuPy refuses (implicit conversion to NumPy, NumPy operands, functions CuPy does
           not have); it runs on every CI run and proves the device code without a GPU;
- [cupy]   device 'cuda' on real CuPy; skipped, with a reason, where no GPU answers.
"""
import os
import sys

import numpy as np
import pytest

from minires import backend

sys.path.insert(0, os.path.dirname(__file__))
import strict_cupy  # noqa: E402  (tests/ is not a package)

from backends import BACKENDS  # noqa: E402  (the columns; test files import them from there too)


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    """'numpy', 'strict' or 'cupy'; while a [strict] test runs, strict_cupy is the 'cuda' module."""
    if request.param == "strict":
        previous = backend._install_device_module(strict_cupy)
        try:
            yield "strict"
        finally:
            backend._install_device_module(previous)
    else:
        yield request.param


@pytest.fixture
def device(backend_name):
    """'cpu' for [numpy]; 'cuda' for [strict] (the stand-in) and [cupy] (a real GPU)."""
    return "cpu" if backend_name == "numpy" else "cuda"


@pytest.fixture
def xp(backend_name):
    """The array module of the backend: numpy, strict_cupy or cupy."""
    if backend_name == "numpy":
        return np
    return backend._cupy


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
