"""Classify images with published weights: load a torchvision ``.pth`` (or safetensors, or a
minires ``.npz`` state_dict) into a minires model and print the top-k classes. No torch needed.
(A checkpoint written by ``minires train`` knows its own classes: :mod:`minires.predict.trained`.)

    model = load_pretrained("resnet50-0676ba61.pth")              # the model is guessed from the name
    for idx, name, p in classify(model, ["cat.jpg"])[0]:
        print(f"{p:6.1%}  {name}")

Preprocessing is torchvision's ImageNet eval transform (minires.predict.preprocess): shorter side
to 256 (232 for the "V2" weights), centre crop 224, ImageNet mean and std. A Keras weights
file (HDF5: keras.applications' ``.h5`` or a Keras 3 ``.weights.h5``) gives a Keras-flavoured
model, recognised from its layer names, and Keras's preprocessing for it ("caffe" for
ResNet50/101/152, "tf" for the V2 nets; ``minires.predict.preprocess_keras``).
"""
import os
import re

import numpy as np

from ..backend import device_of, to_device, to_numpy
from ..files import check_regular_file
from ..keras import KERAS_MODELS
from ..keras.weights import is_hdf5, is_tf_checkpoint, keras_file_info, load_keras_weights
from ..models import MODELS
from ..nn import manual_seed, no_grad, softmax
from ..weights import WeightsError, load_weights
from ..zoo import get_model
from .imagenet import imagenet_classes
from .preprocess import check_size, check_sizes, preprocess_imagenet
from .preprocess_keras import preprocess_keras

# torchvision's IMAGENET1K_V2 files (trained with the "new recipe") were evaluated with the
# shorter side resized to 232, not 256. Keyed by the hash torchvision puts in the file name.
V2_RESIZE = {"11ad3fa6": 232, "cd907fc2": 232, "f82ba261": 232, "1a0047aa": 232, "110c445d": 232,
             "9ba9bcbe": 232}


def guess_model(path):
    """The model name a weights file's name starts with ('resnet50-0676ba61.pth' -> 'resnet50'), or None."""
    stem = os.path.basename(path).lower()
    names = sorted(MODELS, key=len, reverse=True)  # 'resnet50_v1' before 'resnet50', 'resnet101' before 'resnet10'
    for name in names:
        if re.match(re.escape(name) + r"(?![0-9a-z_])", stem):
            return name
    return None


def default_resize(path):
    """232 for torchvision's V2 weights (recognised by the hash in the file name), else 256."""
    for h, size in V2_RESIZE.items():
        if h in os.path.basename(path):
            return size
    return 256


def load_pretrained(path, model=None, device="cpu"):
    """A minires model in eval mode holding the weights in ``path``.

    ``model``: a name from minires.models.MODELS (default: guessed from the file name). The
    number of classes is read from the file's ``fc.weight``. Weights that do not fit the model
    raise an error listing the first missing, unexpected and mis-shaped entries.
    """
    if is_tf_checkpoint(path):
        return load_keras_pretrained(path, model, device)
    check_regular_file(path, WeightsError, "weights file",
                       note=" (a folder is read when it holds a TensorFlow checkpoint: its 'checkpoint' file)")
    if is_hdf5(path):
        return load_keras_pretrained(path, model, device)
    name = model or guess_model(path)
    if name is None:
        raise ValueError(f"cannot tell the model from the file name {os.path.basename(path)!r}; "
                         f"give it with --model (one of: {', '.join(MODELS)})")
    state = load_weights(path)
    if any(k.startswith("model/") for k in state):
        raise ValueError(f"{path} is a checkpoint written by `minires train`, not a state_dict: it records its "
                         "model, classes and preprocessing, so give it with --checkpoint (load_trained)")
    if "fc.weight" not in state or np.ndim(state["fc.weight"]) != 2:
        raise ValueError(f"{path} has no 2-D 'fc.weight', so it is not a ResNet classifier's state_dict "
                         f"(first keys: {', '.join(list(state)[:5])})")
    num_classes, features = np.shape(state["fc.weight"])
    in_channels = np.shape(state["conv1.weight"])[1] if "conv1.weight" in state else 3
    net = get_model(name, num_classes=int(num_classes), in_channels=int(in_channels))
    try:
        net.load_state_dict(state, strict=True)
    except KeyError as e:
        raise ValueError(f"the weights in {os.path.basename(path)} do not fit {name}: {e.args[0]}") from None
    return net.to(device).eval()


def random_model(name="resnet50", device="cpu", seed=0):
    """``name`` with random (seeded) weights, in eval mode: the whole pipeline without a download.

    Its predictions mean nothing; ``minires predict`` without ``--weights`` uses it and warns so.
    """
    manual_seed(seed)
    return get_model(name).to(device).eval()


def load_keras_pretrained(path, model=None, device="cpu"):
    """A Keras-flavoured minires model (eval mode, logits out) holding the Keras weights in ``path``
    (an .h5, a .weights.h5 or a TensorFlow checkpoint); its ``preprocessing`` attribute says how to
    prepare images ("caffe" or "tf"), its ``weights_note`` how the file's layers were paired with
    the model's when their names were lost (None when by name)."""
    guessed, num_classes, how = keras_file_info(path)
    name = model or guessed
    if name is None:
        raise ValueError(f"cannot tell which Keras ResNet {os.path.basename(path)} holds from its layers; "
                         f"give it with --model (one of: {', '.join(KERAS_MODELS)})")
    if name not in KERAS_MODELS:
        raise ValueError(f"{os.path.basename(path)} is a Keras weights file; --model must be one of "
                         f"{', '.join(KERAS_MODELS)}, got {name!r}")
    if num_classes is None:
        raise ValueError(f"{os.path.basename(path)} has no classifier ('predictions' or 'logits' layer): "
                         "a feature extractor's weights (include_top=False) cannot classify")
    net = get_model(name, num_classes=num_classes, classifier_activation=None)
    load_keras_weights(net, path)
    net.weights_note = None if how == "names" else (
        f"{os.path.basename(path)}'s layer names are TensorFlow's own, not the tutorial's (its blocks drop "
        f"name=), so its layers were paired with {name}'s in the order Keras tracks them (as the tutorial's code assigns them)")
    return net.to(device).eval()


def classify(model, images, topk=5, resize=256, crop=224, classes=None):
    """For each image (a path or a Pillow image): [(class index, class name, probability)], best first.

    ``classes``: the names of the output units (default: ImageNet's for a 1,000-way model,
    else the indices as strings). ``resize`` and ``crop`` are checked before any image is opened:
    each in 1 .. MAX_IMAGE_SIZE (preprocess.py), the crop no larger than the resize (Keras's
    preprocessing resizes the whole image to crop x crop, so there only the range is checked).
    """
    mode = getattr(model, "preprocessing", None)
    if mode in ("caffe", "tf"):
        check_size("resize", resize)
        check_size("crop", crop)
    else:
        check_sizes(resize, crop)
    params = model.parameters()
    device = device_of(params[0].data) if params else "cpu"
    dtype = params[0].data.dtype if params else np.float32
    results = []
    for image in images:
        if mode in ("caffe", "tf"):                      # a Keras-flavoured model: Keras's preprocessing
            x = preprocess_keras(image, mode, size=crop, data_format=model.data_format).astype(dtype)
        else:
            x = preprocess_imagenet(image, resize=resize, crop=crop).astype(dtype)
        with no_grad():
            logits = model(to_device(x, device))
        p = to_numpy(softmax(logits))[0].astype(np.float64)
        if classes is None:
            if p.size == 1000:
                classes = imagenet_classes()
            else:
                classes = [str(i) for i in range(p.size)]
        top = np.argsort(-p, kind="stable")[:topk]
        results.append([(int(i), classes[i], float(p[i])) for i in top])
    return results
