"""Transforms on batches of images (N, C, H, W), NumPy or CuPy alike.

Each function takes a whole batch and returns a new one (the input is never modified).
The array module comes from the input (``xp = xp_of(x)``), so the same code runs on the
GPU. Random choices (crop offsets, which images to flip) are drawn on the CPU from a
NumPy ``Generator``: they are a handful of numbers per batch, and drawing them in one
place makes a run reproducible whatever the device.

The usual order, as in the batch iterator:  uint8 -> :func:`to_float32` ([0, 1]) ->
augmentation (:func:`random_crop`, :func:`random_hflip`) -> :func:`normalize`.
Cropping before normalising means the zero padding is *black*, as in the ResNet paper.
"""
import numpy as np

from ..backend import xp_of


def as_rng(rng):
    """A ``numpy.random.Generator`` from a Generator (returned as is), an int seed, or None (unseeded)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def _check_batch(x, what):
    if getattr(x, "ndim", None) != 4:
        raise ValueError(f"{what} expects a batch of images (N, C, H, W), got shape {getattr(x, 'shape', type(x))}")


def to_float32(images):
    """(N, C, H, W) uint8 0..255 -> float32 in [0, 1]; float images are returned as float32 unchanged."""
    xp = xp_of(images)
    if images.dtype == xp.uint8:
        return images.astype(xp.float32) / xp.float32(255.0)
    if images.dtype.kind == "f":
        return images.astype(xp.float32, copy=False)
    raise ValueError(f"expected uint8 (0..255) or float images, got dtype {images.dtype}")


def normalize(x, mean, std):
    """(x - mean) / std per channel: x (N, C, H, W) float, mean and std (C,). Returns float32.

    After this every channel has (about) zero mean and unit variance over the training set,
    which keeps the first layer's pre-activations on a sensible scale.
    """
    _check_batch(x, "normalize")
    xp = xp_of(x)
    C = x.shape[1]
    mean = xp.asarray(np.asarray(mean, dtype=np.float32).reshape(-1))
    std = xp.asarray(np.asarray(std, dtype=np.float32).reshape(-1))
    if mean.shape != (C,) or std.shape != (C,):
        raise ValueError(f"normalize: mean and std must have one value per channel, shape ({C},), "
                         f"got shapes {tuple(mean.shape)} and {tuple(std.shape)}")
    if not bool(xp.all(std > 0)):
        raise ValueError(f"normalize: std must be positive in every channel, got {std.tolist()}")
    # (C,) -> (1, C, 1, 1) so that it broadcasts over the batch and the pixels.
    return ((x - mean[None, :, None, None]) / std[None, :, None, None]).astype(xp.float32, copy=False)


def random_crop(x, size, padding=0, rng=None):
    """Pad each image with ``padding`` zeros on every side, then cut a random ``size`` window.

    x (N, C, H, W) -> (N, C, size_h, size_w); ``size`` is an int or (size_h, size_w). Each
    image gets its own offset, uniform over the 2*padding+1 positions per axis when size == H,
    so CIFAR's "pad 4, crop 32" shifts every image by -4..4 pixels in each direction.
    """
    _check_batch(x, "random_crop")
    rng = as_rng(rng)
    xp = xp_of(x)
    SH, SW = (size, size) if np.isscalar(size) else tuple(size)
    N, C, H, W = x.shape
    PH, PW = H + 2 * padding, W + 2 * padding
    if padding < 0 or SH > PH or SW > PW:
        raise ValueError(f"random_crop: cannot cut a {SH}x{SW} window from {H}x{W} images padded "
                         f"by {padding} (= {PH}x{PW})")
    padded = xp.zeros((N, C, PH, PW), dtype=x.dtype)
    padded[:, :, padding:padding + H, padding:padding + W] = x
    top = rng.integers(0, PH - SH + 1, size=N)   # offsets 0..PH-SH inclusive
    left = rng.integers(0, PW - SW + 1, size=N)
    out = xp.empty((N, C, SH, SW), dtype=x.dtype)
    for i in range(N):  # one slice copy per image: plain to read, cheap next to a conv layer
        out[i] = padded[i, :, top[i]:top[i] + SH, left[i]:left[i] + SW]
    return out


def random_hflip(x, rng=None, p=0.5):
    """Mirror each image left-right with probability ``p``: x (N, C, H, W) -> same shape."""
    _check_batch(x, "random_hflip")
    rng = as_rng(rng)
    xp = xp_of(x)
    flip = xp.asarray(rng.random(x.shape[0]) < p)  # (N,) bool, one coin per image
    # Reversing the last axis (W) mirrors the image; xp.where picks per image.
    return xp.where(flip[:, None, None, None], x[:, :, :, ::-1], x)


class CropFlip:
    """The standard CIFAR augmentation (He et al. 2015, sec. 4.2): pad, random crop, random flip.

    Call it as ``aug(x, rng)`` on a float batch (N, C, H, W) in [0, 1], before normalising.
    """

    def __init__(self, size, padding=4, flip=True):
        self.size, self.padding, self.flip = size, padding, flip

    def __call__(self, x, rng):
        x = random_crop(x, self.size, self.padding, rng)
        return random_hflip(x, rng) if self.flip else x

    def __repr__(self):
        return f"CropFlip(size={self.size}, padding={self.padding}, flip={self.flip})"
