"""ImageNet evaluation preprocessing, as torchvision does it for its pretrained models.

For a Pillow image, torchvision's ``ImageClassification`` eval transform is::

    resize the shorter side to 256 (232 for the "V2" weights), bilinear, keep the aspect ratio
    centre-crop 224 x 224
    to float32 in [0, 1]   (uint8 / 255)
    normalise each channel: (x - mean) / std, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)

and the model sees a (1, 3, 224, 224) batch. We reproduce each step with the same
integer arithmetic, so the same image gives the same crop:

* new size: the shorter side becomes ``size``, the longer ``int(size * long / short)``
  (truncated, not rounded); nothing happens if the shorter side already is ``size``.
* Pillow's ``Image.resize(..., BILINEAR)`` widens its filter when it shrinks, i.e. it
  antialiases -- which is what torchvision calls for PIL input.
* crop corner: ``top = int(round((H - 224) / 2))`` (Python's round: halves go to even),
  ``left`` likewise; ``center_crop`` pads an image smaller than the crop with zeros first, as
  torchvision does (``preprocess_imagenet`` never needs to: its crop is at most its resize).

Hostile inputs are refused before they cost memory: ``resize`` and ``crop`` at most
``MAX_IMAGE_SIZE`` (and the crop no larger than the resize); an image file over Pillow's pixel
limit (``PIL.Image.MAX_IMAGE_PIXELS``, a possible decompression bomb) before it is decoded; an
image whose resize would exceed that limit (sides too unequal) before it is resized. A file
Pillow cannot decode (truncated, corrupt, not an image) is an OSError naming it.

Opening, resizing and cropping live in :mod:`minires.data.images` (a folder data set's images
are read by the same code) and are importable from here too.

Needs Pillow (``pip install Pillow``), imported only when an image is touched.
"""
import numpy as np

from ..data.images import (DECODE_ERRORS, center_crop, center_crop_box, check_not_empty, check_resized,  # noqa: F401
                           image_name, load_image, pil_image, pillow_errors, resize_shorter_side, resized_size,
                           rgb_image)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The largest resize or crop accepted, in pixels. The largest any published ResNet was
# evaluated at is BiT's (Kolesnikov et al. 2020, big_transfer's bit_hyperrule.py): shorter side
# to 512, crop 480; torchvision's are 256 (232) and 224, Keras's 224. 2048 is 4 x 512: room to
# experiment, and memory stays bounded -- a forward pass at 2048 x 2048 (NumPy, float32) peaks at
# 1.6 GB for resnet50 and 4.7 GB for resnext101_32x8d, the largest net in minires.models, and
# memory grows with the square of the size (--crop 30000 asked 10.8 GB for the input alone).
MAX_IMAGE_SIZE = 2048


def check_size(name, value):
    """``value`` (a resize or crop, in pixels) must be an int in 1 .. MAX_IMAGE_SIZE."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int (pixels), got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int (pixels), got {value}")
    if value > MAX_IMAGE_SIZE:
        raise ValueError(f"{name} must be at most {MAX_IMAGE_SIZE} pixels (MAX_IMAGE_SIZE, "
                         f"minires/predict/preprocess.py), got {value}")


def check_sizes(resize, crop):
    """torchvision's transform: each size in 1 .. MAX_IMAGE_SIZE, and the crop within the resize."""
    check_size("resize", resize)
    check_size("crop", crop)
    if crop > resize:
        raise ValueError(f"crop ({crop}) must not exceed resize ({resize}), the shorter side the image is "
                         "resized to before the crop is cut from it")


def to_normalized_array(img, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """A Pillow RGB image (W x H) -> float32 array (3, H, W): ``(pixel / 255 - mean) / std``."""
    x = np.asarray(img, dtype=np.uint8)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got an array of shape {x.shape}")
    x = x.transpose(2, 0, 1).astype(np.float32) / np.float32(255)       # (3, H, W) in [0, 1]
    m = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    return (x - m) / s


def preprocess_imagenet(image, resize=256, crop=224, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """torchvision's ImageNet eval transform -> float32 batch (1, 3, crop, crop).

    image: a Pillow image or a path to an image file. Non-RGB images are converted to RGB
    first (as torchvision's ImageFolder loader does). ``resize=232`` matches the "V2"
    (IMAGENET1K_V2) weights, 256 the original ones. ``resize`` and ``crop`` are checked before
    the image is opened: each in 1 .. MAX_IMAGE_SIZE, the crop no larger than the resize.
    """
    check_sizes(resize, crop)
    name = image_name(image)
    image = rgb_image(image)
    check_resized(name, *image.size, resize)
    image = center_crop(resize_shorter_side(image, resize), crop)
    return to_normalized_array(image, mean, std)[None]
