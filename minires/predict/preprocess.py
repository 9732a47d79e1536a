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

Needs Pillow (``pip install Pillow``), imported only when an image is touched.
"""
import contextlib
import os
import re
import struct
import warnings

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The largest resize or crop accepted, in pixels. The largest any published ResNet was
# evaluated at is BiT's (Kolesnikov et al. 2020, big_transfer's bit_hyperrule.py): shorter side
# to 512, crop 480; torchvision's are 256 (232) and 224, Keras's 224. 2048 is 4 x 512: room to
# experiment, and memory stays bounded -- a forward pass at 2048 x 2048 (NumPy, float32) peaks at
# 1.6 GB for resnet50 and 4.7 GB for resnext101_32x8d, the largest net in minires.models, and
# memory grows with the square of the size (--crop 30000 asked 10.8 GB for the input alone).
MAX_IMAGE_SIZE = 2048

# What Pillow raises on a truncated or corrupt file, besides OSError ("image file is
# truncated"): found by feeding Pillow 13 truncated and bit-flipped PNG, JPEG, GIF, TIFF, ... files.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, EOFError, IndexError, KeyError,
                 ArithmeticError, struct.error)


def pil_image():
    """Pillow's ``Image`` module, or an ImportError saying how to get it."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("image preprocessing needs Pillow: pip install Pillow") from e
    return Image


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


def image_name(image):
    """How errors name an image: its path, a Pillow image's file name, or 'the image'."""
    if isinstance(image, (str, bytes, os.PathLike)):
        return os.fsdecode(image)
    return getattr(image, "filename", None) or "the image"


def _bomb_message(name, error):
    limit = pil_image().MAX_IMAGE_PIXELS
    found = re.search(r"\((\d+) pixels\)", str(error))
    size = f"has {int(found.group(1)):,} pixels" if found else f"is too large ({error})"
    return (f"{name} {size}, over Pillow's limit of {limit:,} (PIL.Image.MAX_IMAGE_PIXELS): refused "
            "undecoded, as a possible decompression bomb")


@contextlib.contextmanager
def pillow_errors(name):
    """Turn what Pillow raises on a hostile file into one error naming it: over the pixel limit
    (DecompressionBombWarning or ...Error) a ValueError, truncated or corrupt an OSError.

    The warning becomes an error only inside this block (warnings.catch_warnings restores the
    filters); Pillow's own settings (MAX_IMAGE_PIXELS, LOAD_TRUNCATED_IMAGES) are left alone.
    """
    Image = pil_image()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(_bomb_message(name, e)) from e
    except FileNotFoundError as e:
        raise FileNotFoundError(f"no image at {name}") from e
    except Image.UnidentifiedImageError as e:
        raise OSError(f"cannot read the image {name}: Pillow does not recognise its format") from e
    except DECODE_ERRORS as e:
        raise OSError(f"cannot read the image {name}: {e}") from e


def load_image(path):
    """Open an image file as an RGB Pillow image (grey, palette, RGBA ... are converted).

    A file over Pillow's pixel limit is a ValueError (before it is decoded), a truncated or
    corrupt one an OSError, a missing one a FileNotFoundError: each names the file.
    """
    name = image_name(path)
    with pillow_errors(name):
        with pil_image().open(path) as img:
            img = img.convert("RGB")
    check_not_empty(name, *img.size)
    return img


def check_not_empty(name, width, height):
    """An image with no pixels cannot be resized: a ValueError naming it."""
    if width < 1 or height < 1:
        raise ValueError(f"{name} is empty ({width} x {height} pixels)")


def check_resized(name, width, height, size):
    """Refuse a resize to a shorter side of ``size`` that would exceed Pillow's pixel limit (an
    image whose sides are very unequal: 1 x 50000 pixels would become 256 x 12,800,000)."""
    limit = pil_image().MAX_IMAGE_PIXELS
    new_width, new_height = resized_size(width, height, size)
    if limit is not None and new_width * new_height > limit:
        raise ValueError(f"resizing {name} ({width} x {height}) to a shorter side of {size} would make it "
                         f"{new_width} x {new_height}, {new_width * new_height:,} pixels, over Pillow's limit "
                         f"of {limit:,} (PIL.Image.MAX_IMAGE_PIXELS): its sides are too unequal")


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
    return img.resize(resized_size(width, height, size), pil_image().BILINEAR)


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
        canvas = pil_image().new(img.mode, (width + pad_w, height + pad_h))
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
    if isinstance(image, (str, bytes, os.PathLike)):
        return load_image(image)
    if not hasattr(image, "convert") or not hasattr(image, "size"):
        raise TypeError(f"expected a Pillow image or a file path, got {type(image).__name__}")
    name = image_name(image)
    with pillow_errors(name):                      # an image opened lazily is decoded here
        image = image if image.mode == "RGB" else image.convert("RGB")
        image.load()
    check_not_empty(name, *image.size)
    return image


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
