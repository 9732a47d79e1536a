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


# ----- hooks (minires/nn/hooks.py) -----
def _resnet20_and_batch(seed=0, N=2):
    from minires import models
    model = models.resnet20(num_classes=5).eval()
    return model, np.random.default_rng(seed).standard_normal((N, 3, 8, 8)).astype(np.float32)


def test_hooks_fire_with_the_right_shapes_wherever_the_module_is_called():
    """A stage called as stage(x), a block's conv called as self.conv1(x), a block called by
    Sequential.forward as m.forward(x): each hook fires once per forward and once per backward."""
    model, x = _resnet20_and_batch()
    seen = []
    handles = []
    for name in ("layer2", "layer2.0", "layer2.0.conv1", "fc"):
        m = dict(model.named_modules())[name]
        handles.append(m.register_forward_hook(
            lambda m, inputs, out, name=name: seen.append(("f", name, inputs[0].shape, out.shape))))
        handles.append(m.register_full_backward_hook(
            lambda m, g_in, g_out, name=name: seen.append(("b", name, g_in[0].shape, g_out[0].shape))))
    y = model(x)
    model.backward(np.ones_like(y))
    assert seen == [("f", "layer2.0.conv1", (2, 16, 8, 8), (2, 32, 4, 4)), ("f", "layer2.0", (2, 16, 8, 8), (2, 32, 4, 4)),
                    ("f", "layer2", (2, 16, 8, 8), (2, 32, 4, 4)), ("f", "fc", (2, 64), (2, 5)),
                    ("b", "fc", (2, 64), (2, 5)), ("b", "layer2.0.conv1", (2, 16, 8, 8), (2, 32, 4, 4)),
                    ("b", "layer2.0", (2, 16, 8, 8), (2, 32, 4, 4)), ("b", "layer2", (2, 16, 8, 8), (2, 32, 4, 4))]
    for h in handles:
        h.remove()
        h.remove()                                   # twice is harmless
    seen.clear()
    model.backward(np.ones_like(model(x)))
    assert seen == []
    assert not any("forward" in vars(m) or "backward" in vars(m) for m in model.modules())


def test_the_backward_hook_sees_the_gradients_the_model_computes():
    model, x = _resnet20_and_batch()
    got = {}
    h = model.conv1.register_full_backward_hook(lambda m, g_in, g_out: got.update(g_in=g_in[0], g_out=g_out[0]))
    g = np.random.default_rng(1).standard_normal((2, 5)).astype(np.float32)
    model(x)
    dx = model.backward(g)
    h.remove()
    assert got["g_in"] is dx and got["g_out"].shape == (2, 16, 8, 8)


def test_summary_and_the_figures_trace_keep_a_modules_hooks():
    """summary() shadows every module's forward for one pass: a hooked module's hooks still fire
    during the pass and are still there after it."""
    from minires.teach import summary
    from minires.teach.summary import trace
    model, x = _resnet20_and_batch()
    seen = []
    h = model.layer2[0].register_forward_hook(lambda m, inputs, out: seen.append(out.shape))
    calls = trace(model, x)
    assert seen == [calls[[c[0] for c in calls].index("layer2.0")][3]] == [(2, 32, 4, 4)]
    assert [c[0] for c in calls][:3] == ["conv1", "bn1", "relu"] and calls[0][2] == tuple(x.shape)
    assert "layer2.0" in summary(model, x.shape[1:])
    model(x)
    assert len(seen) == 3                      # the hook fired in summary's pass and now: still there
    h.remove()
    assert "forward" not in model.layer2[0].__dict__ and not any("forward" in m.__dict__ for m in model.modules())


def test_a_hook_may_replace_the_output_and_the_input_gradient():
    model, x = _resnet20_and_batch()
    y = model(x)
    h = model.fc.register_forward_hook(lambda m, inputs, out: out * 2)
    np.testing.assert_allclose(model(x), 2 * y, rtol=1e-6)
    h.remove()
    np.testing.assert_allclose(model(x), y, rtol=1e-6)
    h = model.conv1.register_full_backward_hook(lambda m, g_in, g_out: (g_in[0] * 0,))
    assert not model.backward(np.ones_like(y)).any()
    h.remove()
    bad = model.conv1.register_full_backward_hook(lambda m, g_in, g_out: g_in[0])   # not a tuple
    model(x)
    with pytest.raises(TypeError, match="1-tuple"):
        model.backward(np.ones_like(y))
    bad.remove()
    with pytest.raises(TypeError, match="expected a function"):
        model.conv1.register_forward_hook("not a function")


def test_unused_hooks_cost_nothing_not_even_a_check(monkeypatch):
    """No module without hooks enters the hook path: a model whose every module had a hook,
    removed again, makes exactly the Python calls of a model that never had one, in forward and
    backward, and none of them is in hooks.py."""
    import sys

    from minires.nn import hooks
    calls = {"forward": 0, "backward": 0}
    real_f, real_b = hooks.run_forward_hooks, hooks.run_backward_hooks
    monkeypatch.setattr(hooks, "run_forward_hooks", lambda *a: (calls.__setitem__("forward", calls["forward"] + 1),
                                                                real_f(*a))[1])
    monkeypatch.setattr(hooks, "run_backward_hooks", lambda *a: (calls.__setitem__("backward", calls["backward"] + 1),
                                                                 real_b(*a))[1])

    def profile(model, x):
        names = []

        def tracer(frame, event, arg):
            if event == "call" and "weakref" not in frame.f_code.co_filename:   # not the collector's callbacks
                names.append((frame.f_code.co_filename, frame.f_code.co_name))
        sys.setprofile(tracer)
        try:
            model.backward(np.ones_like(model(x)))
        finally:
            sys.setprofile(None)
        return names

    model, x = _resnet20_and_batch()
    profile(model, x)                    # the first call makes the workspaces the others reuse
    before = profile(model, x)
    for m in model.modules():
        m.register_forward_hook(lambda *a: None).remove()
        m.register_full_backward_hook(lambda *a: None).remove()
    after = profile(model, x)
    assert after == before
    assert not [name for file, name in after if file.endswith("hooks.py")]
    assert calls == {"forward": 0, "backward": 0}
    h = model.layer1[0].relu2.register_forward_hook(lambda *a: None)          # one hook: one entry per call
    model(x)
    assert calls == {"forward": 1, "backward": 0}
    h.remove()


def test_a_deep_copy_keeps_the_hooks_bound_to_the_copy():
    import copy
    model, x = _resnet20_and_batch()
    seen = []
    model.fc.register_forward_hook(lambda m, inputs, out: seen.append(m))
    twin = copy.deepcopy(model)
    twin(x)
    assert seen == [twin.fc]


def test_thread_parallel_runs_a_model_with_hooks_alone():
    """Hooks run on the model, not on replicas: each hook sees the whole batch, once."""
    from minires.parallel import ThreadParallel
    model, x = _resnet20_and_batch(N=4)
    seen = []
    h = model.layer3.register_forward_hook(lambda m, inputs, out: seen.append(out.shape[0]))
    net = ThreadParallel(model, threads=2, min_part_values=1)
    net(x)
    assert net.parts is None and seen == [4]
    h.remove()
    net(x)
    assert seen == [4]
    from minires.parallel.blas import blas_controllable
    if blas_controllable():
        assert net.parts is not None                 # without hooks it splits again
