"""Module plumbing: naming, parameters and buffers, state_dict, to(), modes, no_grad, clear errors."""
import numpy as np
import pytest

from helpers import on
from minires import nn
from minires.backend import to_numpy
from minires.teach.gradcheck import check_module


class Tiny(nn.Module):
    """conv -> bn -> relu -> pool -> flatten -> fc, named like torchvision."""

    def __init__(self):
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        return self.fc(self.flatten(self.avgpool(x)))

    def backward(self, g):
        g = self.avgpool.backward(self.flatten.backward(self.fc.backward(g)))
        g = self.layer1.backward(g)
        return self.conv1.backward(self.bn1.backward(self.relu.backward(g)))


def test_state_dict_keys_follow_pytorch_order():
    keys = list(Tiny().state_dict())
    assert keys == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                    "bn1.num_batches_tracked", "layer1.0.weight", "layer1.1.weight", "layer1.1.bias",
                    "layer1.1.running_mean", "layer1.1.running_var", "layer1.1.num_batches_tracked",
                    "fc.weight", "fc.bias"]
    m = Tiny()
    assert [n for n, _ in m.named_parameters()] == [k for k in keys if "running" not in k and "num_batches" not in k]
    assert m.num_parameters() == 2 * 4 * 9 + 8 + 4 * 4 * 9 + 8 + 4 * 3 + 3


def test_paths_name_nested_layers_in_errors():
    m = Tiny()
    assert m.layer1[0].path == "layer1.0" and m.fc.path == "fc"
    with pytest.raises(ValueError, match="Conv2d 'conv1'.*expected 2 channels"):
        m(np.zeros((1, 3, 5, 5), np.float32))


def test_load_state_dict_roundtrip_and_dtype_kept(device):
    a, b = Tiny(), Tiny().to(device)
    sd = {k: np.asarray(v, dtype=np.float64) if v.dtype.kind == "f" else v for k, v in a.state_dict().items()}
    b.load_state_dict(sd)                                          # host values into a model on `device`
    a.to(device).load_state_dict(b.state_dict())                   # and device to device
    for k, v in b.state_dict().items():
        np.testing.assert_allclose(to_numpy(v), to_numpy(a.state_dict()[k]), rtol=1e-7)
        if v.dtype.kind == "f":
            assert v.dtype == np.float32  # the model keeps its own dtype


def test_load_state_dict_lists_every_problem():
    m = Tiny()
    sd = dict(m.state_dict())
    del sd["bn1.bias"]
    sd["fc.extra"] = np.zeros(1)
    sd["fc.weight"] = np.zeros((5, 4))
    with pytest.raises(KeyError) as e:
        m.load_state_dict(sd)
    msg = str(e.value)
    assert "missing keys (1): bn1.bias" in msg and "unexpected keys (1): fc.extra" in msg
    assert "fc.weight: model has (3, 4), state_dict has (5, 4)" in msg
    before = m.fc.bias.data.copy()
    del sd["fc.extra"]
    sd["fc.weight"] = m.fc.weight.data.copy()
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert missing == ["bn1.bias"] and unexpected == []
    np.testing.assert_array_equal(m.fc.bias.data, before)


def test_state_dict_shares_arrays_with_the_model():
    m = Tiny()
    sd = m.state_dict()
    m.train()
    m(np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32))
    assert int(sd["bn1.num_batches_tracked"]) == 1 and sd["bn1.running_mean"] is m.bn1.running_mean


def test_to_dtype_casts_floats_only(device):
    m = Tiny().to(device, dtype=np.float64)
    assert all(p.data.dtype == np.float64 and p.grad.dtype == np.float64 for p in m.parameters())
    assert m.bn1.running_var.dtype == np.float64 and m.bn1.num_batches_tracked.dtype == np.int64
    with pytest.raises(TypeError, match="floating"):
        m.to(dtype=np.int32)
    with pytest.raises(ValueError, match="device must be one of"):
        m.to("gpu")


def test_default_dtype_is_float32_everywhere():
    m = Tiny()
    assert all(v.dtype in (np.float32, np.int64) for v in m.state_dict().values())
    y = m(np.zeros((1, 2, 4, 4), np.float32))
    assert y.dtype == np.float32


def test_train_eval_and_zero_grad(rng, device, xp):
    m = Tiny().to(device, dtype=np.float64)
    assert all(x.training for x in m.modules())
    m.eval()
    assert not any(x.training for x in m.modules())
    y = m(on(device, rng.standard_normal((2, 2, 4, 4))))
    m.backward(xp.ones_like(y))
    assert any(bool(xp.any(p.grad != 0)) for p in m.parameters())
    m.zero_grad()
    assert all(bool(xp.all(p.grad == 0)) for p in m.parameters())


def test_no_grad_keeps_nothing_for_backward(rng):
    m = Tiny()
    with nn.no_grad():
        m(rng.standard_normal((2, 2, 4, 4)).astype(np.float32))
    assert all(layer._saved is None for layer in m.modules())
    with pytest.raises(RuntimeError, match="without a forward"):
        m.fc.backward(np.zeros((2, 3), np.float32))
    assert nn.is_grad_enabled()


@pytest.mark.parametrize("train", [True, False])
def test_small_network_gradcheck_end_to_end(train, rng, device):
    m = Tiny().train(train).to(device)
    result = check_module(m, on(device, rng.standard_normal((3, 2, 4, 4))), max_entries=40)
    assert result.ok, str(result)
    assert len(result.rows) == 1 + len(m.parameters())


def test_manual_seed_makes_init_repeatable():
    nn.manual_seed(3)
    a = Tiny().state_dict()
    nn.manual_seed(3)
    b = Tiny().state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_repr_shows_the_tree():
    text = repr(Tiny())
    assert "(conv1): Conv2d(2, 4, kernel_size=(3, 3)" in text and "(layer1): Sequential(" in text


# ----------------------------------------------------------------- all-or-nothing loads, clear input errors

@pytest.mark.parametrize("late_entry, error, match", [
    (np.zeros((5, 4), np.float32), KeyError, r"fc.weight: model has \(3, 4\)"),        # wrong shape
    (np.zeros((3, 4), np.complex64), TypeError, "complex64 cannot be loaded into float32"),
    (np.array([["a"] * 4] * 3), TypeError, "<U1 cannot be loaded"),
    ([[0.0] * 4] * 3, TypeError, "expected a NumPy or CuPy array, got list"),
])
def test_a_bad_entry_late_in_the_dict_loads_nothing(late_entry, error, match):
    m = Tiny()
    before = {k: v.copy() for k, v in m.state_dict().items()}
    sd = {k: np.full_like(v, 7) for k, v in m.state_dict().items()}    # every entry would change
    assert list(sd)[-2] == "fc.weight"                                  # the bad one comes late
    sd["fc.weight"] = late_entry
    with pytest.raises(error, match=match) as e:
        m.load_state_dict(sd)
    assert "nothing was loaded" in str(e.value)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_an_integer_buffer_refuses_floats_and_accepts_big_endian_ints():
    m = Tiny()
    sd = dict(m.state_dict())
    sd["bn1.num_batches_tracked"] = np.array(2.5)
    with pytest.raises(TypeError, match="float64 cannot be loaded into int64"):
        m.load_state_dict(sd)
    sd["bn1.num_batches_tracked"] = np.array(3, dtype=">i4")
    sd["fc.bias"] = np.arange(3, dtype=">f8")
    m.load_state_dict(sd)
    assert int(m.bn1.num_batches_tracked) == 3 and m.fc.bias.data.dtype == np.float32
    np.testing.assert_array_equal(m.fc.bias.data, [0, 1, 2])


class FakeTorchTensor:
    """Looks like a torch tensor to duck typing: shape, dtype (a torch.dtype, without .kind), ndim."""
    __module__ = "torch"

    def __init__(self, shape):
        self.shape, self.ndim, self.dtype = shape, len(shape), object()


def test_a_torch_tensor_or_a_list_given_to_a_model_is_a_clear_error():
    m = Tiny()
    with pytest.raises(TypeError, match=r"expected a NumPy or CuPy array as input, got torch.FakeTorchTensor; "
                                        r"convert it with x.detach\(\).cpu\(\).numpy\(\)"):
        m.conv1(FakeTorchTensor((2, 2, 4, 4)))
    with pytest.raises(TypeError, match=r"got list; convert it with np.asarray"):
        m.fc([[1.0] * 4])


def test_an_empty_batch_is_a_clear_error_in_eval_and_train_mode():
    m = Tiny()
    for mode in (m.eval, m.train):
        mode()
        with pytest.raises(ValueError, match=r"Conv2d 'conv1'.*at least one sample.*\(0, 2, 4, 4\)"):
            m.conv1(np.zeros((0, 2, 4, 4), np.float32))
        with pytest.raises(ValueError, match=r"Linear 'fc'.*at least one sample"):
            m.fc(np.zeros((0, 4), np.float32))


def test_big_endian_input_message_suggests_valid_code():
    m = Tiny()
    x = np.zeros((1, 2, 4, 4), dtype=">f4")
    with pytest.raises(TypeError, match="non-native byte order") as e:
        m.conv1(x)
    fix = str(e.value).split("convert it with ")[1]
    assert fix == "x.astype(np.float32)"
    assert m.conv1(eval(fix)).dtype == np.float32               # the suggestion is code that works
    with pytest.raises(TypeError) as e:
        m.conv1(np.zeros((1, 2, 4, 4), np.float64))
    assert "x.astype(np.float32)" in str(e.value) and "model.to(dtype=np.float64)" in str(e.value)


def test_linear_says_features():
    with pytest.raises(ValueError, match="expected 4 features at axis 1"):
        Tiny().fc(np.zeros((2, 5), np.float32))
