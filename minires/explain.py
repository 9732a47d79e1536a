"""Seeing inside a network: feature maps, saliency and Grad-CAM, from the backward you wrote.

    feature_maps(model, x, layer)            what one layer computed: (N, C, h, w)
    saliency(model, x, target=None)          which pixels the class score is most sensitive to: (N, H, W)
    grad_cam(model, x, target=None, layer=None)   where in the image the evidence for the class is: (N, h, w)
    upsample(maps, size)                     a (N, h, w) map to the image's size, bilinear
    overlay(image, cam)                      one map as a heat map over its image, for showing

No autograd is needed: the gradient of a class score is one call of the model's own
``backward``, started from a one-hot gradient on the scores; hooks (minires/nn/hooks.py) catch
what a layer computed and the gradient that reached it.

- Saliency (Simonyan et al., 2013): ``max over channels of |d s_t / d x|``, where ``s_t`` is
  the score of class ``t`` *before* the softmax (a Keras model built with one is explained
  through its logits: its softmax is stepped over, both ways).
- Grad-CAM (Selvaraju et al., 2017): with ``A`` (N, C, h, w) the layer's output,
  ``alpha_k = mean over (i, j) of d s_t / d A_k[i, j]`` (how much channel k matters) and
  ``cam = ReLU(sum_k alpha_k A_k)``, at the layer's resolution, not normalised.

``target``: None, the predicted class of each image; an int, that class for every image; or
one int per image. Each function runs the model in eval mode (batch norms use their running
statistics, so each image is explained on its own) and gives it back as it found it: its
modes, its parameters' ``.grad`` (the same arrays, untouched), nothing kept for backward. A
ThreadParallel is explained through its model. Works on NumPy and CuPy arrays alike.

Feature maps are channels-first, (N, C, h, w), whatever the model's ``data_format``: a
channels-last model transposes its input to (N, C, H, W) as it enters, so every layer inside
it computes channels-first. Its saliency is (N, H, W) as for any other model.
"""
import contextlib
import difflib

import numpy as np

from .backend import to_numpy, xp_of
from .keras.layers import Softmax
from .nn.switches import enable_grad, no_grad
from .parallel import ThreadParallel


# ----- the three views -----
def feature_maps(model, x, layer):
    """The output of the layer named ``layer`` for the batch ``x``: (N, C, h, w), a copy.

    ``layer`` is a name from ``model.named_modules()`` ('layer3', 'layer1.0.conv1').

        >>> model = minires.models.resnet20(); model.eval()
        >>> explain.feature_maps(model, np.zeros((2, 3, 32, 32), np.float32), "layer2").shape
        (2, 32, 16, 16)
    """
    model = _unwrap(model)
    module = find_layer(model, layer)
    with explaining(model) as handles:
        kept = []
        handles.append(module.register_forward_hook(lambda m, inputs, out: kept.append(out.copy())))
        with no_grad():
            model(x)
    return _feature_map(kept, layer)


def saliency(model, x, target=None):
    """x (N, C, H, W) (channels-last: (N, H, W, C)) -> (N, H, W): max over channels of |d s_target / d x|.

    ``s_target``: the pre-softmax score of class ``target`` (None: each image's predicted class).

        >>> model = minires.models.resnet20(); model.eval()
        >>> explain.saliency(model, np.random.rand(2, 3, 32, 32).astype(np.float32), target=3).shape
        (2, 32, 32)
    """
    model = _unwrap(model)
    with explaining(model) as handles:
        scores = _scores(model, x, handles)
        dx = _backward_from(model, scores, target)
    channels = 3 if getattr(model, "data_format", "channels_first") == "channels_last" else 1
    return xp_of(dx).abs(dx).max(axis=channels)


def grad_cam(model, x, target=None, layer=None):
    """x (N, C, H, W) -> (N, h, w): ReLU(sum_k alpha_k A_k) at the layer's resolution (h, w), raw.

    ``A`` (N, C, h, w): the output of ``layer`` (None: ``default_layer(model)``, the last stage);
    ``alpha_k``: the spatial mean of d s_target / d A_k. ``upsample(cam, (H, W))`` brings it to
    the image's size, ``overlay(image, cam[n])`` shows it.

        >>> model = minires.models.resnet18(num_classes=10); model.eval()
        >>> explain.grad_cam(model, np.random.rand(2, 3, 64, 64).astype(np.float32)).shape
        (2, 2, 2)
    """
    model = _unwrap(model)
    layer = default_layer(model) if layer is None else layer
    module = find_layer(model, layer)
    with explaining(model) as handles:
        kept, grads = [], []
        handles.append(module.register_forward_hook(lambda m, inputs, out: kept.append(out.copy())))
        handles.append(module.register_full_backward_hook(lambda m, g_in, g_out: grads.append(g_out[0].copy())))
        scores = _scores(model, x, handles)
        _backward_from(model, scores, target)
    A = _feature_map(kept, layer)
    if not grads:
        raise ValueError(f"layer {layer!r}: the model's backward never called its backward")
    dA = grads[-1]
    alpha = dA.mean(axis=(2, 3), keepdims=True)          # (N, C, 1, 1): how much each channel matters
    return xp_of(A).maximum((alpha * A).sum(axis=1), 0)   # ReLU: only what speaks *for* the class


# ----- layers by name -----
def find_layer(model, name):
    """The module called ``name`` in ``model.named_modules()``; a ValueError listing the names if none is."""
    modules = dict(model.named_modules())
    modules.pop("", None)
    if isinstance(name, str) and name in modules:
        return modules[name]
    close = difflib.get_close_matches(str(name), list(modules), n=3)
    names = list(modules)
    listed = ", ".join(names[:40]) + (f" ... ({len(names)} in all: [n for n, _ in model.named_modules()])"
                                      if len(names) > 40 else "")
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"{type(model).__name__} has no layer {name!r}.{hint} Its layers: {listed}")


def default_layer(model):
    """The layer Grad-CAM looks at unless told: the last stage's output, the last feature map before
    the global pool. ImageNet ResNets (and the TensorFlow and Keras v1 ones): 'layer4'; the CIFAR
    nets: 'layer3'; the Keras v2 nets: 'post_relu' (their last stage ends un-normalised; post_bn
    and post_relu follow it)."""
    if "post_relu" in dict(model.named_children()):
        return "post_relu"
    if hasattr(model, "stages"):
        last = model.stages()[-1]
        return next(name for name, m in model.named_modules() if m is last)
    raise ValueError(f"{type(model).__name__}: no default layer for Grad-CAM (the model has no stages()); "
                     f"name one: grad_cam(model, x, layer='...')")


# ----- showing a map -----
def upsample(maps, size):
    """maps (N, h, w) (or (h, w)) -> (N, H, W), bilinear; ``size``: (H, W) or one int for both.

    Half-pixel centres, as PIL's resize and PyTorch's ``interpolate(mode="bilinear",
    align_corners=False)``: output pixel i samples the input at (i + 0.5) * h / H - 0.5,
    clamped to the edge pixels. (align_corners=True would pin the corner pixels' centres
    together instead, stretching the map by a pixel's worth.)

        >>> explain.upsample(np.array([[[0., 1.]]]), (1, 4))
        array([[[0.  , 0.25, 0.75, 1.  ]]])
    """
    H, W = (size, size) if isinstance(size, int) else size
    if maps.dtype.kind != "f":
        maps = maps.astype(np.float64)
    return _resize_axis(_resize_axis(maps, H, maps.ndim - 2), W, maps.ndim - 1)


def _resize_axis(a, n_out, axis):
    """``a`` resized to ``n_out`` entries along ``axis``, linearly, half-pixel centres."""
    xp, n_in = xp_of(a), a.shape[axis]
    src = xp.clip((xp.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = xp.floor(src).astype(np.int64)
    i1 = xp.minimum(i0 + 1, n_in - 1)
    shape = [1] * a.ndim
    shape[axis] = n_out
    w = (src - i0).astype(a.dtype).reshape(shape)
    return xp.take(a, i0, axis=axis) * (1 - w) + xp.take(a, i1, axis=axis) * w


def overlay(image, cam, alpha=0.5):
    """One image (H, W, 3) or (H, W), uint8 or floats in [0, 1], and its map (h, w) -> (H, W, 3)
    floats in [0, 1], NumPy: the map upsampled to (H, W), divided by its maximum, coloured from
    blue (0) to red (1) and blended in with weight ``alpha``. For showing, with plt.imshow.

        >>> cam = explain.grad_cam(model, x)
        >>> plt.imshow(explain.overlay(picture, cam[0]))
    """
    image, cam = to_numpy(image), to_numpy(cam)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or cam.ndim != 2:
        raise ValueError(f"overlay: expected one image (H, W, 3) or (H, W) and one map (h, w), got {image.shape} "
                         f"and {cam.shape} (a (3, H, W) image: image.transpose(1, 2, 0); a batch's map: cam[n])")
    picture = image / 255.0 if image.dtype.kind in "ui" else image.astype(np.float64)
    picture = np.repeat(picture[:, :, None], 3, axis=2) if picture.ndim == 2 else picture
    heat = upsample(cam.astype(np.float64), picture.shape[:2])
    heat = heat / heat.max() if heat.max() > 0 else heat
    colour = np.stack([np.clip(1.5 - np.abs(4 * heat - k), 0, 1) for k in (3, 2, 1)], axis=-1)   # "jet"
    return np.clip((1 - alpha) * picture + alpha * colour, 0, 1)


# ----- the machinery -----
def _unwrap(model):
    """The model itself: a ThreadParallel is explained through its model (the hooks are the model's)."""
    return model.model if isinstance(model, ThreadParallel) else model


@contextlib.contextmanager
def explaining(model):
    """Run the block with ``model`` in eval mode, with gradients kept and its parameters' ``.grad`` on
    fresh zeros; afterwards its modes and its own ``.grad`` arrays are back, the hooks the block
    registered (the list it is given) removed, and nothing kept for backward."""
    modes = [(m, m.training) for m in model.modules()]
    params = model.parameters()
    grads = [p.grad for p in params]
    handles = []
    model.eval()
    for p in params:
        p.grad = xp_of(p.grad).zeros_like(p.grad)
    try:
        with enable_grad():
            yield handles
    finally:
        for handle in handles:
            handle.remove()
        for p, grad in zip(params, grads):
            p.grad = grad
        for m, mode in modes:
            m.training = mode
            m.clear_saved()


def _scores(model, x, handles):
    """The model's class scores (N, K) for ``x``, before its softmax if it ends in one."""
    softmax = getattr(model, "softmax", None)
    if isinstance(softmax, Softmax):       # Keras's models: step over it, forward and backward
        handles.append(softmax.register_forward_hook(lambda m, inputs, out: inputs[0]))
        handles.append(softmax.register_full_backward_hook(lambda m, g_in, g_out: g_out))
    scores = model(x)
    if scores.ndim != 2:
        raise ValueError(f"{type(model).__name__} returns shape {tuple(scores.shape)}, not class scores (N, K): "
                         f"saliency and Grad-CAM need a model with its classifier (include_top=True)")
    return scores


def _backward_from(model, scores, target):
    """``model.backward`` of a one-hot gradient: d s_t / d x for each image's class t; returns dx."""
    xp = xp_of(scores)
    N, K = scores.shape
    if target is None:
        t = xp.argmax(scores, axis=1)
    else:
        t = xp.asarray(_check_target(target, N, K))
    grad = xp.zeros_like(scores)
    grad[xp.arange(N), t] = 1
    return model.backward(grad)


def _check_target(target, N, K):
    """``target`` as N ints in 0..K-1 (NumPy), or a ValueError saying what it takes."""
    t = np.asarray(to_numpy(target))
    if t.dtype.kind not in "iu" or t.ndim > 1 or (t.ndim == 1 and len(t) != N):
        raise ValueError(f"target must be None, a class index or one index per image ({N}), got {target!r}")
    if t.size and (t.min() < 0 or t.max() >= K):
        raise ValueError(f"target must be a class index in 0..{K - 1} (the model has {K} classes), got {target!r}")
    return np.broadcast_to(t, (N,))


def _feature_map(kept, layer):
    """The last output the layer's hook kept, checked to be a feature map (N, C, h, w)."""
    if not kept:
        raise ValueError(f"layer {layer!r} did not run in the model's forward")
    if kept[-1].ndim != 4:
        raise ValueError(f"layer {layer!r} gives shape {tuple(kept[-1].shape)}, not a feature map (N, C, h, w)")
    return kept[-1]
