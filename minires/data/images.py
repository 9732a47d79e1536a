"""Image files, read with bounds: Pillow, its pixel limit, and one error naming a bad file.

Image files come from strangers. Every image minires reads -- a folder of class folders for
training (:mod:`minires.data.folder`), a photo to classify (:mod:`minires.predict`) -- is
opened here, so the same rules hold everywhere:

* a file over Pillow's pixel limit (``PIL.Image.MAX_IMAGE_PIXELS``, a possible decompression
  bomb) is refused before it is decoded: a ValueError naming it;
* a file Pillow cannot decode (truncated, corrupt, not an image) is an OSError naming it;
* an image whose resize would exceed that limit (sides too unequal) is refused before it is resized.

Pillow's own settings (MAX_IMAGE_PIXELS, LOAD_TRUNCATED_IMAGES) are left alone.

The resize and crop are torchvision's, with the same integer arithmetic, so the same image
gives the same pixels:

* new size: the shorter side becomes ``size``, the longer ``int(size * long / short)``
  (truncated, not rounded); nothing happens if the shorter side already is ``size``.
* Pillow's ``Image.resize(..., BILINEAR)`` widens its filter when it shrinks, i.e. it
  antialiases -- which is what torchvision calls for PIL input.
* crop corner: ``top = int(round((H - crop) / 2))`` (Python's round: halves go to even),
  ``left`` likewise; an image smaller than the crop is zero-padded first, as torchvision does.

:func:`square_image` puts them together -- the shorter side resized to ``size``, the centre
``size`` x ``size`` cut out -- for the images of a folder data set and for ``minires predict``
with a training checkpoint, which must prepare an image exactly as training did.

Needs Pillow (``pip install Pillow``), imported only when an image is touched.
"""
import contextlib
import os
import re
import struct
import warnings

import numpy as np

from ..files import open_regular_file

# What Pillow raises on a truncated or corrupt file, besides OSError ("image file is
# truncated"): found by feeding Pillow 13 truncated and bit-flipped PNG, JPEG, GIF, TIFF, ... files.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, EOFError, IndexError, KeyError,
                 ArithmeticError, struct.error)
MODES = {1: "L", 3: "RGB"}   # channels -> the Pillow mode images are converted to


def pil_image():
    """Pillow's ``Image`` module, or an ImportError saying how to get it."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("reading images needs Pillow: pip install Pillow") from e
    return Image


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


def load_image(path, mode="RGB", draft=None):
    """Open an image file as a Pillow image in ``mode`` ('RGB' or 'L'; other modes are converted).

    ``draft``: a size (pixels) the image will be shrunk to anyway; a JPEG is then decoded at
    1/2, 1/4 or 1/8 scale while both sides stay at least that large (Pillow's ``draft``: a
    large photo decodes many times faster). A file over Pillow's pixel limit is a ValueError
    (before it is decoded), a truncated or corrupt one an OSError, a missing one a
    FileNotFoundError, a directory, FIFO or device an OSError (:mod:`minires.files`): each names the file.
    """
    name = image_name(path)
    with open_regular_file(path, OSError, "image") as f, pillow_errors(name):  # a folder, a FIFO: refused
        with pil_image().open(f) as img:
            if draft is not None:
                img.draft(mode, (draft, draft))
            img = img.convert(mode)
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


def rgb_image(image, mode="RGB"):
    """A path or a Pillow image -> a Pillow image in ``mode`` (RGB by default; other modes are
    converted, as torchvision's ImageFolder loader does); anything else is a TypeError."""
    if isinstance(image, (str, bytes, os.PathLike)):
        return load_image(image, mode)
    if not hasattr(image, "convert") or not hasattr(image, "size"):
        raise TypeError(f"expected a Pillow image or a file path, got {type(image).__name__}")
    name = image_name(image)
    with pillow_errors(name):                      # an image opened lazily is decoded here
        image = image if image.mode == mode else image.convert(mode)
        image.load()
    check_not_empty(name, *image.size)
    return image


def square_image(image, size, channels=3):
    """A path or a Pillow image -> uint8 array (channels, size, size): converted to RGB (3
    channels) or grey (1), the shorter side resized to ``size``, the centre square cut out.

    The same function prepares the images of a folder data set and an image to classify with a
    model trained on one, so both see the same pixels.
    """
    if channels not in MODES:
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    name = image_name(image)
    if isinstance(image, (str, bytes, os.PathLike)):
        image = load_image(image, MODES[channels], draft=size)
    else:
        image = rgb_image(image, MODES[channels])
    check_resized(name, *image.size, size)
    x = np.asarray(center_crop(resize_shorter_side(image, size), size), dtype=np.uint8)
    return x[None] if x.ndim == 2 else np.ascontiguousarray(x.transpose(2, 0, 1))
