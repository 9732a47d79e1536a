"""The backend columns of the device tests: [numpy], [strict] and [cupy] (see conftest.py).

Test files import these from here, never from conftest: pytest imports every conftest.py under
the module name ``conftest`` (tests/ and tutorials/ each have one), so ``from conftest import``
could find the other one.
"""
import pytest

from minires import backend

REAL_GPU = backend.gpu_available()
NO_GPU = "no GPU here: CuPy is not installed or no CUDA device answers (the [strict] column ran instead)"

BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("strict", id="strict"),
    pytest.param("cupy", id="cupy", marks=pytest.mark.skipif(not REAL_GPU, reason=NO_GPU)),
]

DEVICE_BACKENDS = BACKENDS[1:]   # for tests that only make sense on a device:
# @pytest.mark.parametrize("backend_name", DEVICE_BACKENDS, indirect=True)
CUPY_ONLY = BACKENDS[2:]         # for what the stand-in cannot play (a GPU benchmark in a subprocess)
