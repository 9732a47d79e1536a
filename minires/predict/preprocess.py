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
  ``left`` likewise; an image smaller than the crop is first padded with zeros.

Needs Pillow (``pip install Pillow``), imported only when an image is touched.
"""
import os

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _pil_image():
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("image preprocessing needs Pillow: pip install Pillow") from e
    return Image


def load_image(path):
    """Open an image file as an RGB Pillow image (grey, palette, RGBA ... are converted)."""
    Image = _pil_image()
    with Image.open(path) as img:
        return img.convert("RGB")


def resized_size(width, height, size):
    """(new_width, new_height) when the shorter side is resized to ``size``, torchvision's way."""
    if size < 1:
        raise ValueError(f"resize size must be a positive int, got {size}")
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def resize_shorter_side(img, size):
    """Resize a Pillow image so its shorter side is ``size`` (bilinear, antialiased)."""
    width, height = img.size
    if min(width, height) == size:
        return img                                 # torchvision returns the image untouched
    return img.resize(resized_size(width, height, size), _pil_image().BILINEAR)


def center_crop_box(width, height, crop):
    """(left, top, right, bottom) of the centred ``crop`` x ``crop`` window; needs an image >= crop."""
    top = int(round((height - crop) / 2.0))
    left = int(round((width - crop) / 2.0))
    return left, top, left + crop, top + crop


def center_crop(img, crop):
    """Centre-crop a Pillow image to ``crop`` x ``crop``, zero-padding it first if it is smaller."""
    width, height = img.size
    if crop > width or crop > height:
        # torchvision pads (crop - size) // 2 on the left/top and the rest on the right/bottom.
        pad_w, pad_h = max(crop - width, 0), max(crop - height, 0)
        canvas = _pil_image().new(img.mode, (width + pad_w, height + pad_h))
        canvas.paste(img, (pad_w // 2, pad_h // 2))
        img, (width, height) = canvas, canvas.size
    return img.crop(center_crop_box(width, height, crop))


def to_normalized_array(img, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """A Pillow RGB image (W x H) -> float32 array (3, H, W): ``(pixel / 255 - mean) / std``."""
    x = np.asarray(img, dtype=np.uint8)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got an array of shape {x.shape}")
    x = x.transpose(2, 0, 1).astype(np.float32) / np.float32(255)       # (3, H, W) in [0, 1]
    m = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    return (x - m) / s


def rgb_image(image):
    """A path or a Pillow image -> an RGB Pillow image (other modes converted, as torchvision's
    ImageFolder loader does); anything else is a TypeError."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if not hasattr(image, "convert") or not hasattr(image, "size"):
        raise TypeError(f"expected a Pillow image or a file path, got {type(image).__name__}")
    return image if image.mode == "RGB" else image.convert("RGB")


def preprocess_imagenet(image, resize=256, crop=224, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """torchvision's ImageNet eval transform -> float32 batch (1, 3, crop, crop).

    image: a Pillow image or a path to an image file. Non-RGB images are converted to RGB
    first (as torchvision's ImageFolder loader does). ``resize=232`` matches the "V2"
    (IMAGENET1K_V2) weights, 256 the original ones.
    """
    image = center_crop(resize_shorter_side(rgb_image(image), resize), crop)
    return to_normalized_array(image, mean, std)[None]
