"""Keras's ImageNet preprocessing: the two modes keras.applications' ResNets were trained with.

``keras.utils.load_img(path, target_size=(224, 224))`` resizes the whole image to 224 x 224
(no crop; nearest-neighbour by default), then ``preprocess_input``:

    "caffe"  (ResNet50/101/152, v1): RGB -> BGR, then subtract the ImageNet mean per channel,
             (103.939, 116.779, 123.68) in BGR order; no scaling (pixels stay 0..255 - mean)
    "tf"     (ResNet50V2 ..., v2):   x / 127.5 - 1, so pixels lie in [-1, 1]

Which one a model needs is its ``preprocessing`` attribute (``minires.keras.models``).
Needs Pillow for images (``pip install Pillow``). Hostile images and sizes are refused as in
``preprocess.py``: ``size`` at most ``MAX_IMAGE_SIZE``, files over Pillow's pixel limit
undecoded, truncated or corrupt files with an error naming them.
"""

import numpy as np

from .preprocess import check_size, pil_image, rgb_image

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
MODES = ("caffe", "tf")


def keras_preprocess_input(x, mode):
    """x (..., 3) RGB pixels 0..255, channels last -> float32, as keras's ``preprocess_input(x, mode=...)``."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"keras_preprocess_input: expected RGB pixels with 3 channels last, got shape {x.shape}")
    if mode == "caffe":
        return x[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, dtype=np.float32)
    if mode == "tf":
        return x / np.float32(127.5) - np.float32(1.0)
    raise ValueError(f"keras_preprocess_input: mode must be one of {MODES}, got {mode!r}")


def preprocess_keras(image, mode, size=224, data_format="channels_first"):
    """A path or Pillow image -> float32 batch (1, 3, size, size) (or (1, size, size, 3) channels-last).

    ``size`` is checked before the image is opened: an int in 1 .. MAX_IMAGE_SIZE (preprocess.py).
    """
    check_size("size", size)
    image = rgb_image(image).resize((size, size), pil_image().NEAREST)  # keras.utils.load_img's default
    x = keras_preprocess_input(np.asarray(image, dtype=np.uint8), mode)[None]   # (1, H, W, 3)
    return x if data_format == "channels_last" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
