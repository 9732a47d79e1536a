"""The ResNet family: structure, parameter counts, gradient checks end to end, clear errors, summary."""
import numpy as np
import pytest

import minires
from helpers import on
from minires.backend import to_numpy
from minires.teach.gradcheck import check_module
from minires.zoo import get_model
from minires.models import (MODELS, BasicBlock, Bottleneck, CifarResNet, ResNet, ShortcutA, projection,
                            resnet18, resnet20, resnet50, plain20)

# The ImageNet models' counts (torchvision's 11,689,512 for ResNet-18 ...) are checked, with their
# state_dict keys, in test_parity.py.


def test_cifar_counts_match_the_paper():
    assert resnet20().num_parameters() == 269_722            # the paper's "0.27M"
    assert plain20().num_parameters() == 269_722             # option A adds no parameters
    assert resnet20(shortcut="B").num_parameters() == 269_722 + 2 * (16 * 32 + 32 * 64 + 2 * (32 + 64)) // 2
    assert round(get_model("resnet110").num_parameters() / 1e6, 1) == 1.7   # the paper's Table 6
    assert round(get_model("resnet1202").num_parameters() / 1e6, 1) == 19.4


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet19'.*resnet18.*plain110"):
        get_model("resnet19")
    assert len(MODELS) == 20   # the Keras-flavoured nets are in KERAS_MODELS


def test_projection_shortcuts_exactly_where_the_shape_changes():
    def dashed(model):
        return sorted(name for name, m in model.named_modules() if name.endswith("downsample"))
    assert dashed(resnet18()) == ["layer2.0.downsample", "layer3.0.downsample", "layer4.0.downsample"]
    assert dashed(resnet50()) == ["layer1.0.downsample", "layer2.0.downsample", "layer3.0.downsample",
                                  "layer4.0.downsample"]  # layer1: 64 -> 256 channels at the same size
    assert dashed(resnet20()) == ["layer2.0.downsample", "layer3.0.downsample"]
    assert isinstance(resnet20().layer2[0].downsample, ShortcutA)
    assert dashed(plain20()) == []


def test_v15_puts_the_stride_on_the_3x3_and_v1_on_the_1x1():
    v15, v1 = resnet50().layer2[0], get_model("resnet50_v1").layer2[0]
    assert v15.conv1.stride == (1, 1) and v15.conv2.stride == (2, 2)
    assert v1.conv1.stride == (2, 2) and v1.conv2.stride == (1, 1)
    x = get_model("resnext50_32x4d").layer1[0].conv2
    assert x.groups == 32 and x.in_channels == 128


def test_include_top_false_returns_the_last_feature_map(rng):
    m = resnet18(include_top=False).eval()
    y = m(rng.standard_normal((1, 3, 64, 96)).astype(np.float32))
    assert y.shape == (1, 512, 2, 3) and "fc.weight" not in m.state_dict()


def test_init_follows_torchvision():
    minires.manual_seed(0)
    m = resnet50()
    w = m.layer3[0].conv2.weight.data        # (256, 256, 3, 3): fan_out = 256 * 9
    assert abs(w.std() - np.sqrt(2 / (256 * 9))) < 0.02 * np.sqrt(2 / (256 * 9))
    assert np.all(m.layer1[0].bn3.weight.data == 1) and np.all(m.layer1[0].bn3.bias.data == 0)
    z = resnet50(zero_init_residual=True)
    assert np.all(z.layer1[0].bn3.weight.data == 0) and np.all(z.layer1[0].bn1.weight.data == 1)
    assert np.all(resnet18(zero_init_residual=True).layer1[0].bn2.weight.data == 0)


def test_zero_init_residual_makes_identity_blocks(rng):
    block = BasicBlock(4, 4)
    block.bn2.weight.data[...] = 0
    x = np.abs(rng.standard_normal((2, 4, 3, 3))).astype(np.float32)
    np.testing.assert_array_equal(block(x), x)     # relu(0 + x) = x for x >= 0


def randomize_batchnorms(model, rng):
    """Batch norms away from their (1, 0, 0, 1) start. With beta = 0 in eval mode a window of
    exact zeros (ReLU outputs, padding) stays exactly 0 up to the next ReLU: a kink where
    central differences measure 1/2 and the check fails for a reason that is not a bug."""
    for m in model.modules():
        if isinstance(m, minires.nn.BatchNorm2d):
            C = m.num_features
            m.weight.data[...] = rng.uniform(0.5, 1.5, C)
            m.bias.data[...] = rng.normal(0, 0.1, C)
            m.running_mean[...] = rng.normal(0, 0.1, C)
            m.running_var[...] = rng.uniform(0.5, 1.5, C)
    return model


@pytest.mark.parametrize("make", [
    lambda: BasicBlock(4, 4),
    lambda: BasicBlock(4, 6, stride=2, downsample=projection(4, 6, 2)),
    lambda: BasicBlock(4, 8, stride=2, downsample=ShortcutA(2)),
    lambda: BasicBlock(4, 6, stride=2, residual=False),
    lambda: Bottleneck(8, 2),
    lambda: Bottleneck(4, 2, stride=2, downsample=projection(4, 8, 2)),
    lambda: Bottleneck(4, 2, stride=2, downsample=projection(4, 8, 2), stride_in_1x1=True),
    lambda: Bottleneck(8, 4, groups=2, base_width=32, downsample=projection(8, 16, 1)),
], ids=["basic", "basic-projection", "basic-optionA", "plain", "bottleneck", "bottleneck-projection",
        "bottleneck-v1", "resnext"])
@pytest.mark.parametrize("train", [True, False])
def test_block_gradcheck(make, train, rng, path, device):
    block = randomize_batchnorms(make(), rng).train(train).to(device)
    result = check_module(block, on(device, rng.standard_normal((2, 4 if not isinstance(block, Bottleneck) or
                                                                 block.conv1.in_channels == 4 else 8, 5, 6))),
                          max_entries=25)
    assert result.ok, str(result)


def test_shortcut_a_shapes_and_gradient(rng, device):
    s = ShortcutA(2)
    x = rng.standard_normal((2, 4, 5, 5))
    y = to_numpy(s(on(device, x)))
    assert y.shape == (2, 8, 3, 3)
    np.testing.assert_array_equal(y[:, 2:6], x[:, :, ::2, ::2])
    assert np.all(y[:, :2] == 0) and np.all(y[:, 6:] == 0)
    assert check_module(s, on(device, x)).ok


@pytest.mark.parametrize("make", [
    lambda: CifarResNet(1, num_classes=3, in_channels=1),
    lambda: CifarResNet(1, num_classes=3, in_channels=1, shortcut="B"),
    lambda: CifarResNet(1, num_classes=3, in_channels=1, residual=False),
], ids=["resnet8-A", "resnet8-B", "plain8"])
def test_small_cifar_net_gradcheck_end_to_end(make, rng, device, path):
    model = randomize_batchnorms(make(), rng).to(device)
    result = check_module(model, on(device, rng.standard_normal((3, 1, 8, 8))), mode="direction")
    assert result.ok, str(result)
    assert len(result.rows) == 1 + len(model.parameters())


def test_small_imagenet_style_net_gradcheck_end_to_end(rng, path):
    """A ResNet-10 (one basic block per stage), every tensor along one random direction. In a
    net this deep float64 round-off in the loss is ~1e-13 of it, so eps = 1e-5 keeps the
    central difference well above the noise (its truncation error, ~eps^2, stays tiny).
    NumPy only (20 s here): the blocks and the small CIFAR nets carry the device columns."""
    model = randomize_batchnorms(ResNet(BasicBlock, [1, 1, 1, 1], num_classes=5), rng)
    result = check_module(model, rng.standard_normal((2, 3, 64, 64)), mode="direction", eps=1e-5)
    assert result.ok, str(result)


def test_bad_input_names_the_stage_and_the_sizes():
    m = resnet20(in_channels=1)
    with pytest.raises(ValueError, match="CifarResNet.*expected 1 channels.*got 3"):
        m(np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="rank 4.*got shape \\(8, 8\\)"):
        m(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="too small: after layer3 the feature maps are 1x1 with batch 1"):
        m(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match="too small: after layer4 the feature maps are 1x1 with batch 1"):
        resnet18()(np.zeros((1, 3, 32, 32), np.float32))
    resnet18().eval()(np.zeros((1, 3, 32, 32), np.float32))  # eval mode: 1x1 maps are fine
    with pytest.raises(ValueError, match="groups=1 and base_width=64"):
        BasicBlock(4, 4, groups=2)
    with pytest.raises(ValueError, match="shortcut must be 'A'.*or 'B'"):
        resnet20(shortcut="C")


def test_state_dict_errors_list_missing_and_extra_keys():
    sd = dict(resnet20().state_dict())
    sd["layer4.0.conv1.weight"] = np.zeros(1)
    del sd["fc.bias"]
    with pytest.raises(KeyError, match="missing keys \\(1\\): fc.bias.*unexpected keys \\(1\\): layer4.0.conv1.weight"):
        resnet20().load_state_dict(sd)


def test_summary_traces_shapes_like_the_paper():
    text = minires.summary(resnet50(), (3, 224, 224), depth=2)
    assert "layer1.0  Bottleneck         (1, 256, 56, 56)" in text.replace("  Bottleneck", "  Bottleneck")
    assert "(1, 64, 56, 56)" in text and "(1, 2048, 7, 7)" in text
    assert "total parameters: 25,557,032" in text
    m = resnet20(in_channels=1)
    full = minires.summary(m, (1, 8, 8))
    assert "layer3.2.conv2" in full and "(1, 64, 2, 2)" in full and m.training  # mode restored
    assert m.layer1[0].forward.__func__ is BasicBlock.forward                   # recording removed
