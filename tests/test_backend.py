import numpy as np
import pytest

from conftest import DEVICE_BACKENDS
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


@pytest.mark.parametrize("backend_name", DEVICE_BACKENDS, indirect=True)
def test_cupy_roundtrip_and_mixing(xp):
    a = np.arange(4.0)
    g = to_device(a, "cuda")
    assert isinstance(g, xp.ndarray) and not isinstance(g, np.ndarray) and xp_of(g) is xp and device_of(g) == "cuda"
    assert np.array_equal(to_numpy(g), a)
    with pytest.raises(DeviceError, match="different devices"):
        xp_of(a, g)
