import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from backends import DEVICE_BACKENDS
from minires import backend
from minires.backend import DeviceError, device_of, gpu_available, to_device, to_numpy, xp_of


def test_xp_of_numpy_and_none():
    assert xp_of(np.zeros(2)) is np
    assert xp_of() is np
    assert xp_of(None, np.ones(1)) is np


def test_to_numpy_and_device_roundtrip_cpu():
    a = np.arange(6.0).reshape(2, 3)
    assert to_device(a, "cpu") is a or np.array_equal(to_device(a, "cpu"), a)
    assert np.array_equal(to_numpy([1, 2]), np.array([1, 2]))
    assert device_of(a) == "cpu"


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="device must be one of"):
        to_device(np.zeros(1), "tpu")


def test_gpu_available_never_raises(monkeypatch):
    class Broken:
        class cuda:
            class runtime:
                @staticmethod
                def getDeviceCount():
                    raise RuntimeError("driver exploded")
    monkeypatch.setattr(backend, "_cupy", Broken)
    assert gpu_available() is False


def test_cuda_without_gpu_says_so(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)   # as on a machine without CuPy
    with pytest.raises(DeviceError, match="no GPU is available"):
        to_device(np.zeros(1), "cuda")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def why_with_fake_cupy(tmp_path, init_source):
    """backend.why_no_gpu() in a fresh interpreter where `import cupy` runs ``init_source``
    (None: no cupy package at all, whatever is installed here)."""
    fake = tmp_path / "fake"
    (fake / "cupy").mkdir(parents=True)
    if init_source is None:  # a package that refuses to exist: shadows a real CuPy too
        (fake / "cupy" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'cupy'\", "
                                                   "name='cupy')\n")
    else:
        (fake / "cupy" / "__init__.py").write_text(textwrap.dedent(init_source))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake), ROOT]))
    code = "from minires import backend; print(backend.why_no_gpu()); print(backend.gpu_available())"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    reason, available = proc.stdout.strip().splitlines()
    assert available == "False"
    return reason


def test_no_gpu_reason_cupy_not_installed(tmp_path):
    reason = why_with_fake_cupy(tmp_path, None)
    assert reason.startswith("CuPy is not installed")
    assert "pip install cupy-cuda12x" in reason and "cupy-cuda13x" in reason and ".[gpu]" in reason


def test_no_gpu_reason_cupy_installed_but_broken(tmp_path):
    # what CuPy raises when it cannot load its CUDA libraries (a wheel for another CUDA, say)
    reason = why_with_fake_cupy(tmp_path, """
        raise ImportError("CuPy is not correctly installed.\\n\\nlibcudart.so.12: cannot open shared object file")
    """)
    assert reason.startswith("CuPy is installed but does not load (ImportError: CuPy is not correctly installed.)")
    assert "cupy-cuda12x or cupy-cuda13x" in reason and "pip install" not in reason


def test_no_gpu_reason_cupy_fine_but_no_device(tmp_path):
    reason = why_with_fake_cupy(tmp_path, """
        class ndarray: pass
        class cuda:
            class runtime:
                @staticmethod
                def getDeviceCount():
                    raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
    """)
    assert reason == ("CuPy is installed, but no CUDA device answers (cudaErrorNoDevice: no CUDA-capable device "
                      "is detected); is there a GPU and a working driver?")


def test_no_gpu_reason_zero_devices_and_the_device_error(monkeypatch):
    class NoDevices:
        class cuda:
            class runtime:
                @staticmethod
                def getDeviceCount():
                    return 0
    monkeypatch.setattr(backend, "_cupy", NoDevices)
    assert "no CUDA device answers (0 devices)" in backend.why_no_gpu()
    with pytest.raises(DeviceError, match=r"no GPU is available: CuPy is installed, but no CUDA device answers"):
        backend.check_device("cuda")


@pytest.mark.parametrize("backend_name", DEVICE_BACKENDS, indirect=True)
def test_cupy_roundtrip_and_mixing(xp):
    a = np.arange(4.0)
    g = to_device(a, "cuda")
    assert isinstance(g, xp.ndarray) and not isinstance(g, np.ndarray) and xp_of(g) is xp and device_of(g) == "cuda"
    assert np.array_equal(to_numpy(g), a)
    with pytest.raises(DeviceError, match="different devices"):
        xp_of(a, g)
