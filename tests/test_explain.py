"""minires.explain: saliency and Grad-CAM against central differences (float64), default layers per
family, channels-last and Keras softmax models, the model given back as found, errors, helpers."""
import numpy as np
import pytest

from minires import explain, keras, models, nn
from minires.backend import to_numpy
from minires.parallel import ThreadParallel

EPS = 1e-6
SMALL = (4, 8, 8, 8)     # the Keras nets' bottleneck widths, shrunk: the same structure in milliseconds


def cifar_net(seed=0, num_classes=10):
    """resnet20 in float64 with batch norms that do something in eval mode."""
    model = models.resnet20(num_classes=num_classes).to(dtype=np.float64)
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean[...] = rng.normal(0, 0.1, m.running_mean.shape)
            m.running_var[...] = rng.uniform(0.5, 2, m.running_var.shape)
            m.weight.data[...] = rng.uniform(0.5, 1.5, m.weight.data.shape)
            m.bias.data[...] = rng.normal(0, 0.1, m.bias.data.shape)
    return model


def batch(seed=1, shape=(2, 3, 8, 8)):
    return np.random.default_rng(seed).standard_normal(shape)


def scores(model, x):
    model.eval()
    with nn.no_grad():
        return model(x)


def test_saliency_is_the_numerical_gradient_of_the_target_logit():
    model, x = cifar_net(), batch()
    target = np.array([3, 7])
    sal = explain.saliency(model, x, target)
    assert sal.shape == (2, 8, 8)
    for n, i, j in [(0, 0, 0), (0, 3, 5), (1, 7, 2), (1, 4, 4)]:
        numeric = []
        for c in range(3):
            up, down = x.copy(), x.copy()
            up[n, c, i, j] += EPS
            down[n, c, i, j] -= EPS
            numeric.append((scores(model, up)[n, target[n]] - scores(model, down)[n, target[n]]) / (2 * EPS))
        assert sal[n, i, j] == pytest.approx(max(abs(v) for v in numeric), rel=1e-6, abs=1e-9)


def test_no_target_means_each_images_predicted_class():
    model, x = cifar_net(), batch()
    predicted = scores(model, x).argmax(axis=1)
    np.testing.assert_array_equal(explain.saliency(model, x), explain.saliency(model, x, predicted))
    np.testing.assert_array_equal(explain.grad_cam(model, x), explain.grad_cam(model, x, predicted))
    one = explain.saliency(model, x, 4)                  # one int: that class for every image
    np.testing.assert_array_equal(one, explain.saliency(model, x, [4, 4]))


def head_from_layer2(model, A):
    """The rest of resnet20 after layer2: the logits as a function of layer2's output."""
    model.eval()
    with nn.no_grad():
        return model.fc(model.flatten(model.avgpool(model.layer3(A.copy()))))


def test_grad_cam_is_the_formula_with_a_numerical_gradient():
    model, x = cifar_net(), batch()
    target = np.array([1, 6])
    A = explain.feature_maps(model, x, "layer2")                    # (2, 32, 4, 4)
    assert A.shape == (2, 32, 4, 4)
    dA = np.zeros_like(A)
    for idx in np.ndindex(*A.shape):
        up, down = A.copy(), A.copy()
        up[idx] += EPS
        down[idx] -= EPS
        n = idx[0]
        dA[idx] = (head_from_layer2(model, up)[n, target[n]] - head_from_layer2(model, down)[n, target[n]]) / (2 * EPS)
    alpha = dA.mean(axis=(2, 3), keepdims=True)
    expected = np.maximum((alpha * A).sum(axis=1), 0)
    cam = explain.grad_cam(model, x, target, layer="layer2")
    assert cam.shape == (2, 4, 4)
    np.testing.assert_allclose(cam, expected, rtol=1e-6, atol=1e-9)


def test_grad_cam_on_the_last_stage_before_a_linear_head():
    """After layer3 the head is a mean and a matrix: alpha_k = W[t, k] / (h * w), exactly."""
    model, x = cifar_net(), batch()
    A = explain.feature_maps(model, x, "layer3")
    W = model.fc.weight.data
    expected = np.maximum(np.einsum("k,nkij->nij", W[2] / 4, A), 0)
    np.testing.assert_allclose(explain.grad_cam(model, x, 2), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("build,layer", [
    (lambda: models.resnet18(num_classes=10), "layer4"),
    (lambda: models.resnet20(), "layer3"),
    (lambda: keras.models.tf_resnet34(num_classes=10), "layer4"),
    (lambda: keras.models.keras_resnet50(num_classes=10), "layer4"),
    (lambda: keras.models.keras_resnet50v2(num_classes=10, data_format="channels_last"), "post_relu"),
], ids=["resnet18", "resnet20", "tf_resnet34", "keras_resnet50", "keras_resnet50v2-channels-last"])
def test_the_default_layer_is_the_last_stage(build, layer):
    assert explain.default_layer(build()) == layer


def test_the_default_layer_of_a_model_without_stages_must_be_named():
    with pytest.raises(ValueError, match="layer="):
        explain.default_layer(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()))


def twins(build, **kw):
    """A channels-first and a channels-last model with the same weights."""
    first, last = build(data_format="channels_first", **kw), build(data_format="channels_last", **kw)
    last.load_state_dict(first.state_dict())
    return first.to(dtype=np.float64), last.to(dtype=np.float64)


def test_a_channels_last_model_explains_as_its_channels_first_twin():
    first, last = twins(keras.models.keras_resnet50v2, widths=SMALL, num_classes=10, classifier_activation=None)
    x = batch(shape=(2, 3, 64, 64))
    xl = x.transpose(0, 2, 3, 1).copy()
    np.testing.assert_allclose(explain.saliency(last, xl, 5), explain.saliency(first, x, 5), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(explain.grad_cam(last, xl, 5), explain.grad_cam(first, x, 5), rtol=1e-10, atol=1e-14)
    maps = explain.feature_maps(last, xl, "layer3")
    assert maps.shape == (2, 32, 2, 2)                              # channels-first, always (v2: 64 / 32)
    np.testing.assert_allclose(maps, explain.feature_maps(first, x, "layer3"), rtol=1e-10)


def test_a_keras_model_with_a_softmax_is_explained_through_its_logits():
    soft = keras.models.keras_resnet50(widths=SMALL, num_classes=10).to(dtype=np.float64)
    logits = keras.models.keras_resnet50(widths=SMALL, num_classes=10, classifier_activation=None).to(dtype=np.float64)
    logits.load_state_dict(soft.state_dict())
    x = batch(shape=(1, 3, 32, 32))
    np.testing.assert_allclose(explain.saliency(soft, x, 3), explain.saliency(logits, x, 3), rtol=1e-10)
    np.testing.assert_allclose(explain.grad_cam(soft, x, 3), explain.grad_cam(logits, x, 3), rtol=1e-10)
    assert explain.saliency(soft, x).shape == (1, 32, 32)           # the prediction: argmax of the logits
    assert scores(soft, x).sum() == pytest.approx(1.0)              # the softmax is back afterwards


def test_the_model_is_given_back_as_it_was_found():
    model, x = cifar_net(), batch()
    model.train()
    model.layer1.freeze()
    model.train()
    modes = [m.training for m in model.modules()]
    grads = [p.grad for p in model.parameters()]
    for g in grads:
        g[...] = 0.5
    running = [b.copy() for b in model.buffers()]
    with nn.no_grad():                                              # a backward runs inside, whatever the switch
        explain.grad_cam(model, x)
        explain.saliency(model, x)
    explain.feature_maps(model, x, "layer1")
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is g and (g == 0.5).all() for p, g in zip(model.parameters(), grads))
    assert all((b == r).all() for b, r in zip(model.buffers(), running))   # eval mode: statistics unmoved
    assert all(m._saved is None for m in model.modules())
    assert not any("forward" in vars(m) or "backward" in vars(m) for m in model.modules())   # hooks gone


def test_a_thread_parallel_model_is_explained_through_its_model():
    model, x = cifar_net(), batch(shape=(4, 3, 8, 8))
    net = ThreadParallel(model, threads=2, min_part_values=1)
    np.testing.assert_array_equal(explain.grad_cam(net, x, 1), explain.grad_cam(model, x, 1))


def test_a_bad_layer_name_lists_the_names():
    model, x = cifar_net(), batch()
    with pytest.raises(ValueError, match=r"no layer 'layer4'.*Did you mean 'layer3'.*layer1\.0\.conv1"):
        explain.grad_cam(model, x, layer="layer4")
    with pytest.raises(ValueError, match="no layer"):
        explain.feature_maps(model, x, "")
    with pytest.raises(ValueError, match=r"'fc' gives shape \(2, 10\), not a feature map"):
        explain.grad_cam(model, x, layer="fc")


@pytest.mark.parametrize("target", [10, -1, [1, 10], np.array([0, 1, 2]), 2.5, True, "cat"])
def test_a_bad_target_says_the_range(target):
    model, x = cifar_net(), batch()
    with pytest.raises(ValueError, match=r"0\.\.9|one index per image"):
        explain.saliency(model, x, target)
    with pytest.raises(ValueError, match=r"0\.\.9|one index per image"):
        explain.grad_cam(model, x, target)
    assert model.training                                           # given back even after an error


def test_a_model_without_its_classifier_has_no_scores_to_explain():
    model = models.resnet18(include_top=False)
    with pytest.raises(ValueError, match="include_top=True"):
        explain.saliency(model, np.zeros((1, 3, 32, 32), np.float32))


def test_each_device(device, xp):
    """The same numbers from CuPy arrays ([strict]: the stand-in that refuses what CuPy refuses)."""
    model, x = cifar_net(), batch()
    cpu = [explain.saliency(model, x, 2), explain.grad_cam(model, x, 2), explain.feature_maps(model, x, "layer2")]
    model.to(device)
    xd = xp.asarray(x)
    got = [explain.saliency(model, xd, 2), explain.grad_cam(model, xd, 2), explain.feature_maps(model, xd, "layer2"),
           explain.upsample(explain.grad_cam(model, xd), (8, 8))]
    assert all(isinstance(a, xp.ndarray) for a in got)
    for a, b in zip(got, cpu):
        np.testing.assert_allclose(to_numpy(a), b, rtol=1e-9, atol=1e-12)


def test_upsample_uses_half_pixel_centres():
    np.testing.assert_allclose(explain.upsample(np.array([[[0.0, 1.0]]]), (1, 4)), [[[0, 0.25, 0.75, 1]]])
    maps = np.random.default_rng(0).random((2, 3, 5))
    up = explain.upsample(maps, (6, 10))
    assert up.shape == (2, 6, 10) and up.dtype == maps.dtype
    np.testing.assert_allclose(explain.upsample(maps, (3, 5)), maps)                 # same size: unchanged
    # Output pixel (i, j) samples (i + 0.5) * 3 / 6 - 0.5 = i/2 - 1/4 (clamped at 0): row 1 is
    # 3/4 of row 0 and 1/4 of row 1; column 3 likewise between columns 1 and 2.
    np.testing.assert_allclose(up[:, 1, 0], 0.75 * maps[:, 0, 0] + 0.25 * maps[:, 1, 0])
    np.testing.assert_allclose(up[:, 0, 3], 0.75 * maps[:, 0, 1] + 0.25 * maps[:, 0, 2])
    assert explain.upsample(np.ones((4, 4), np.float32), 8).shape == (8, 8)          # one map, one int


def test_overlay_blends_a_heat_map_into_the_picture():
    picture = np.full((8, 8, 3), 255, np.uint8)
    cam = np.zeros((2, 2))
    cam[0, 0] = 3.0
    shown = explain.overlay(picture, cam, alpha=0.5)
    assert shown.shape == (8, 8, 3) and shown.min() >= 0 and shown.max() <= 1
    assert shown[0, 0, 0] > shown[0, 0, 2] and shown[7, 7, 2] > shown[7, 7, 0]     # red where the map peaks
    assert explain.overlay(np.zeros((8, 8)), np.zeros((2, 2))).shape == (8, 8, 3)   # grey, an all-zero map
    with pytest.raises(ValueError, match="transpose"):
        explain.overlay(np.zeros((3, 8, 8)), cam)
