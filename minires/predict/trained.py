"""Use what you trained: a checkpoint written by ``minires train`` classifies your own images.

    model, info = load_trained("runs/resnet20-pets-20250101-120000/best.npz")
    for index, name, p in classify_trained(model, info, ["my_cat.jpg"])[0]:
        print(f"{p:6.1%}  {name}")

A training checkpoint (:mod:`minires.weights.checkpoint`: arrays and JSON metadata) holds the
model's weights under ``model/`` and the run's configuration: the model's name and the data set.
What the model needs to see a new image as it saw its training images -- the class names, the
image size and channels, the training split's mean and std per channel -- is the checkpoint's
``dataset`` entry (:func:`minires.data.describe_dataset`). A checkpoint without one gets them
from its data set instead, with a note saying so: a built-in data set is loaded (never
downloaded), a folder read again.

An image is prepared exactly as a folder data set's images are (:func:`minires.data.square_image`:
RGB or grey as the model was trained, the shorter side resized to the training size, the centre
square cut out), then normalised: ``(pixel / 255 - mean) / std``. A model trained on the 8x8
digits or on MNIST expects what those hold -- a light digit on a dark background.
"""
import warnings

import numpy as np

from ..backend import device_of, to_device, to_numpy
from ..data import DataNotice, describe_dataset, description_problems, load_dataset, square_image
from ..keras import KERAS_MODELS
from ..models import MODELS
from ..nn import no_grad, softmax
from ..weights import load_checkpoint
from ..zoo import get_model


def read_trained(path):
    """(configuration, state_dict, data set description or None) of a ``minires train`` checkpoint,
    read with bounds and checked; anything else is a ValueError naming the file."""
    arrays, meta = load_checkpoint(path)         # no checkpoint at X; X: a folder, not a checkpoint ...
    cfg = meta.get("config")
    if not isinstance(cfg, dict) or cfg.get("model") not in MODELS:
        raise ValueError(f"{path} is not a checkpoint written by `minires train` (no configuration naming one of "
                         "minires's models); published weights (a state_dict) go with --weights")
    state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    if not state:
        raise ValueError(f"{path} holds no model weights (no 'model/...' arrays)")
    description = meta.get("dataset")
    if description is not None:
        problems = description_problems(description)
        if problems:
            raise ValueError(f"{path}: its data set description is damaged: {'; '.join(problems)}")
    return cfg, state, description


def description_from_data(path, cfg, root=None):
    """The data set description of an older checkpoint, from its data set (loaded, never downloaded)."""
    data = cfg.get("data")
    warnings.warn(DataNotice(f"{path} does not record its classes and image statistics; taking them from its "
                             f"data set {data!r:.200}"), stacklevel=3)
    try:
        train, _ = load_dataset(data, root=root, download=False, image_size=cfg.get("image_size"))
    except (ValueError, OSError, RuntimeError) as e:
        raise ValueError(f"{path} does not record its classes and image statistics, and its data set "
                         f"{data!r:.200} cannot be read to find them: {e}") from e
    return describe_dataset(train)


def load_trained(path, device="cpu", root=None):
    """(model in eval mode, info) from a checkpoint written by ``minires train``.

    ``info``: a dict with the model's ``name``, the ``data`` set it was trained on, its
    ``classes``, ``image_shape`` (C, H, W), ``mean`` and ``std`` (float32, one per channel).
    ``root``: where a built-in data set is kept, for a checkpoint that does not record them.
    """
    cfg, state, description = read_trained(path)
    description = description or description_from_data(path, cfg, root)
    (C, H, W), classes = description["image_shape"], tuple(description["classes"])
    if H != W:
        raise ValueError(f"{path}: its model was trained on {H} x {W} images; predict prepares square ones only")
    name = cfg["model"]
    extra = {"classifier_activation": None} if name in KERAS_MODELS else {}     # logits, as in training
    dtype = np.dtype(cfg.get("dtype") if cfg.get("dtype") in ("float32", "float64") else "float32")
    net = get_model(name, num_classes=len(classes), in_channels=C, **extra).to(device, dtype)
    try:
        net.load_state_dict(state, strict=True)
    except (KeyError, TypeError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        raise ValueError(f"the weights in {path} do not fit a {name} for {len(classes)} classes and {C} input "
                         f"channel{'s' * (C > 1)}: {message}") from None
    info = {"name": name, "data": cfg.get("data"), "classes": classes, "image_shape": (C, H, W),
            "mean": np.asarray(description["mean"], dtype=np.float32),
            "std": np.asarray(description["std"], dtype=np.float32)}
    return net.eval(), info


def prepare_trained(image, info):
    """A path or a Pillow image -> float32 batch (1, C, S, S), as the model's training images were."""
    C, S, _ = info["image_shape"]
    x = square_image(image, S, channels=C).astype(np.float32) / np.float32(255)
    return ((x - info["mean"].reshape(C, 1, 1)) / info["std"].reshape(C, 1, 1))[None]


def classify_trained(model, info, images, topk=5):
    """For each image (a path or a Pillow image): [(class index, class name, probability)], best
    first, at most ``topk`` of them."""
    if isinstance(topk, bool) or not isinstance(topk, (int, np.integer)) or topk < 1:
        raise ValueError(f"topk must be a positive int, got {topk!r}")
    params = model.parameters()
    device = device_of(params[0].data) if params else "cpu"
    dtype = params[0].data.dtype if params else np.float32
    results = []
    for image in images:
        x = prepare_trained(image, info).astype(dtype)
        with no_grad():
            p = to_numpy(softmax(model(to_device(x, device))))[0].astype(np.float64)
        top = np.argsort(-p, kind="stable")[:topk]
        results.append([(int(i), info["classes"][i], float(p[i])) for i in top])
    return results
