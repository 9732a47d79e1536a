"""The Keras-flavoured models: structure, parameter counts, gradient checks, channels-last."""
import numpy as np
import pytest

from helpers import away_from_kinks
from minires.teach.gradcheck import check_module
from minires.zoo import KERAS_MODELS, get_model
from minires.models.blocks import BasicBlock, Bottleneck
from minires.keras.models import KerasResNet, TFResNet
from minires.keras.blocks import BottleneckV1, PreActBottleneck
from minires.keras.layers import KerasBatchNorm2d, Softmax

# keras.applications' own model.count_params() (trainable + batch norm moving statistics), Keras 3.
KERAS_COUNTS = {"keras_resnet50": 25_636_712, "keras_resnet101": 44_707_176, "keras_resnet152": 60_419_944,
                "keras_resnet50v2": 25_613_800, "keras_resnet101v2": 44_675_560, "keras_resnet152v2": 60_380_648}
# The seed's TensorFlow nets have torchvision's trainable parameters (no conv biases).
TF_TRAINABLE = {"tf_resnet34": 21_797_672, "tf_resnet50": 25_557_032, "tf_resnet101": 44_549_160}


@pytest.mark.parametrize("name", list(KERAS_COUNTS))
def test_keras_applications_parameter_counts(name):
    assert get_model(name).keras_param_count() == KERAS_COUNTS[name]


@pytest.mark.parametrize("name", list(TF_TRAINABLE))
def test_seed_tf_parameter_counts(name):
    assert get_model(name).num_parameters() == TF_TRAINABLE[name]


def test_keras_layer_names():
    v1 = get_model("keras_resnet50")
    names = [n for n, _ in v1.keras_layers()]
    assert len(names) == len(set(names))
    assert names[:2] == ["conv1_conv", "conv1_bn"] and names[-1] == "predictions"
    assert "conv2_block1_0_conv" in names and "conv2_block2_0_conv" not in names   # projection on block1 only
    v2 = dict(get_model("keras_resnet50v2").keras_layers())
    assert "post_bn" in v2 and "conv1_bn" not in v2 and "conv3_block4_preact_bn" in v2
    assert isinstance(get_model("keras_resnet50v2").layer2[3].subsample.stride, tuple)   # stride on the LAST block
    tf = dict(get_model("tf_resnet50").keras_layers())
    assert {"conv1", "conv1/BatchNorm", "block2/unit_1/conv2", "block2/unit_1/conv2/BatchNorm",
            "block2/unit_1/shortcut", "block2/unit_1/shortcut/BatchNorm", "logits"} <= set(tf)
    assert tf["block1/unit_1/shortcut/BatchNorm"].eps == 1.001e-5 and tf["conv1/BatchNorm"].eps == 1e-5
    assert tf["conv1/BatchNorm"].momentum == pytest.approx(0.1)    # Keras's momentum=0.9


def test_seed_tf_uses_same_padding_where_it_matters():
    m = get_model("tf_resnet50")
    assert m.conv1.same and m.maxpool.same
    assert m.layer2[0].conv2.same                                     # the strided 3x3 (v1.5)
    assert not m.layer2[0].conv1.same and m.layer1[0].conv2.padding == (1, 1)   # stride 1: "same" is symmetric
    assert m.layer3[2].conv2.path == "layer3.2.conv2"                 # swapped layers know their names
    assert get_model("tf_resnet34").layer2[0].conv1.same


def test_keras_batchnorm_momentum_and_biased_running_variance(rng):
    bn = KerasBatchNorm2d(3, eps=1e-3, keras_momentum=0.9).to(dtype=np.float64)
    x = rng.standard_normal((4, 3, 2, 5))
    bn(x)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))       # biased, as Keras 3
    np.testing.assert_allclose(bn.running_mean, 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * var, rtol=1e-12)


def assert_ok(result):
    """Every tensor passes, except that the bias of a conv that a training-mode batch norm follows
    has a true gradient of exactly 0 (the batch mean takes the bias back out): there both the
    backward and the central differences must be ~0, and the relative error means nothing."""
    for r in result.rows:
        if r["error"] >= result.tol:
            cancelled = r["tensor"].endswith(".bias") and "conv" in r["tensor"]
            assert cancelled and np.max(np.abs(r["analytic"])) < 1e-12 and np.max(np.abs(r["numeric"])) < 1e-7, \
                str(result)


def test_softmax_gradcheck(rng):
    result = check_module(Softmax(), rng.standard_normal((3, 5)))
    assert result.ok, str(result)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("make", [
    lambda: BottleneckV1(4, 2, stride=2, conv_shortcut=True),
    lambda: BottleneckV1(8, 2, stride=1, conv_shortcut=False),
    lambda: PreActBottleneck(4, 2, stride=1, conv_shortcut=True),
    lambda: PreActBottleneck(8, 2, stride=2, conv_shortcut=False),
    lambda: PreActBottleneck(8, 2, stride=1, conv_shortcut=False),
])
def test_keras_blocks_gradcheck(make, training, rng):
    block = make().train(training)
    x = away_from_kinks(rng, (2, block.conv1.in_channels, 5, 6))
    assert_ok(check_module(block, x))


def tiny(kind, **kw):
    """A small network of each family, its batch norms and conv biases randomised. (With beta = 0
    and zero biases, eval mode has exact zeros at ReLU inputs -- v2's stem max-pools a zero-padded
    conv output with no ReLU before it, so the padding's 0 often wins -- and those are kinks.)"""
    if kind == "v1":
        model = KerasResNet(1, [1, 2], widths=(2, 4), num_classes=3, **kw)
    elif kind == "v2":
        model = KerasResNet(2, [2, 2], widths=(2, 4), num_classes=3, **kw)
    else:
        model = TFResNet(BasicBlock, [1, 1, 1, 1], num_classes=3, **kw)
    rng = np.random.default_rng(7)
    for key, value in model.state_dict().items():
        if key.endswith(("bias", "running_mean")):
            value[...] = rng.normal(0, 0.3, value.shape)
        elif key.endswith(("bn1.weight", "bn2.weight", "bn3.weight", "bn.weight", "running_var")):
            value[...] = rng.uniform(0.5, 1.5, value.shape)
    return model


@pytest.mark.parametrize("kind", ["v1", "v2", "tf"])
@pytest.mark.parametrize("training", [True, False])
def test_tiny_networks_gradcheck(kind, training, rng):
    model = tiny(kind).train(training)
    assert_ok(check_module(model, rng.standard_normal((2, 3, 19, 17)), mode="direction"))


@pytest.mark.parametrize("kind", ["v1", "v2", "tf"])
@pytest.mark.parametrize("include_top", [True, False])
def test_channels_last_equals_channels_first(kind, include_top, rng):
    first = tiny(kind, include_top=include_top).to(dtype=np.float64)
    last = tiny(kind, include_top=include_top, data_format="channels_last").to(dtype=np.float64)
    last.load_state_dict(first.state_dict())
    x = rng.standard_normal((2, 3, 19, 17))
    y_first, y_last = first(x), last(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    if include_top:
        np.testing.assert_allclose(y_last, y_first, rtol=1e-12, atol=1e-14)
        g = rng.standard_normal(y_first.shape)
        g_last = g
    else:
        np.testing.assert_allclose(y_last, y_first.transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-14)
        g = rng.standard_normal(y_first.shape)
        g_last = np.ascontiguousarray(g.transpose(0, 2, 3, 1))
    dx_first, dx_last = first.backward(g), last.backward(g_last)
    assert dx_last.shape == (2, 19, 17, 3)
    np.testing.assert_allclose(dx_last, dx_first.transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-13)


def test_channels_last_gradcheck(rng):
    assert_ok(check_module(tiny("v2", data_format="channels_last"), rng.standard_normal((2, 13, 11, 3)),
                           mode="direction"))


def test_clear_errors():
    with pytest.raises(ValueError, match="data_format must be"):
        tiny("v1", data_format="NHWC")
    with pytest.raises(ValueError, match="expected 3 channels at axis 3"):
        tiny("v1", data_format="channels_last")(np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(ValueError, match="version must be"):
        KerasResNet(3, [1])
    with pytest.raises(ValueError, match="at least 2"):
        KerasResNet(2, [1, 1], widths=(2, 4))
    with pytest.raises(ValueError, match="classifier_activation"):
        tiny("tf", classifier_activation="sigmoid")
    with pytest.raises(ValueError, match="unknown model.*Keras-flavoured: tf_resnet34"):
        get_model("keras_resnet18")


def test_softmax_output_and_logits_option(rng):
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    probs = tiny("v1").eval()(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert tiny("v1", classifier_activation=None).eval()(x).sum(axis=1) != pytest.approx(1.0)
    assert set(KERAS_MODELS) >= {"tf_resnet50", "keras_resnet152v2"}
    assert isinstance(get_model("tf_resnet50").layer1[0], Bottleneck)   # the seed's nets are minires's blocks


@pytest.mark.parametrize("kind", ["v1", "v2", "tf"])
@pytest.mark.parametrize("training", [True, False])
def test_plain_and_fast_paths_agree(kind, training, rng):
    """`with nn.plain():` runs the textbook layers; the Keras-flavoured nets give the same numbers."""
    import copy

    from minires import nn
    fast = tiny(kind).to(dtype=np.float64).train(training)
    slow = copy.deepcopy(fast)
    x, g = rng.standard_normal((2, 3, 19, 17)), rng.standard_normal((2, 3))
    y, dx = fast(x), fast.backward(g)
    with nn.plain():
        y_plain, dx_plain = slow(x), slow.backward(g)
    np.testing.assert_allclose(y_plain, y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx_plain, dx, rtol=1e-10, atol=1e-10 * np.abs(dx).max())
