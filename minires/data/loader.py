"""Batching: walk through a data set in (shuffled) mini-batches, ready for the network.

One epoch visits every image exactly once: the indices 0..N-1 are put in a random order
(a fresh order each epoch, drawn from the loader's own seeded generator) and cut into
consecutive slices of ``batch_size``. For each slice the loader

    1. gathers the images (B, C, H, W) and labels (B,) on the CPU,
    2. moves them to the device ('cpu' -> NumPy, 'cuda' -> CuPy) while still uint8
       (four times less to copy than float32),
    3. converts to float32 in [0, 1], applies the augmentation if one was asked for,
    4. normalises each channel with the data set's training mean and std,

and yields (x float32 (B, C, H, W), y int64 (B,)). Two loaders built with the same seed
yield the same batches in the same order, augmentation included.
"""
import math

import numpy as np

from ..backend import check_device, to_device
from . import transforms
from .transforms import as_rng, to_float32


class DataLoader:
    """Iterate over ``dataset`` in mini-batches of (x (B, C, H, W) float32, y (B,) int64).

    dataset     an ArrayDataset (anything with .images, .labels, .mean, .std)
    batch_size  images per batch; the last batch is smaller unless ``drop_last``
    shuffle     a new random order every epoch (False: the data set's order)
    rng         a numpy Generator or an int seed, for the order and the augmentation
    device      'cpu' or 'cuda'
    augment     None, or a callable ``f(x, rng) -> x`` on float batches in [0, 1] (``dataset.augment``)
    normalize   subtract the mean and divide by the std per channel (default True)
    """

    def __init__(self, dataset, batch_size, shuffle=True, rng=None, drop_last=False, device="cpu",
                 augment=None, normalize=True):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be None or a callable f(x, rng) -> x, got {augment!r}")
        if len(dataset) == 0:
            raise ValueError("cannot batch an empty data set")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rng = as_rng(rng)
        self.drop_last = drop_last
        self.device = check_device(device)
        self.augment = augment
        self.normalize = normalize

    def __len__(self):
        """The number of batches in one epoch."""
        N = len(self.dataset)
        return N // self.batch_size if self.drop_last else math.ceil(N / self.batch_size)

    def __iter__(self):
        N = len(self.dataset)
        order = self.rng.permutation(N) if self.shuffle else np.arange(N)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.make_batch(idx)

    def make_batch(self, idx, rng=None):
        """The batch of the images at ``idx``; ``rng`` (default: the loader's) drives the augmentation."""
        images = self.dataset.images[idx]                 # (B, C, H, W) uint8 or float32, CPU
        labels = self.dataset.labels[idx]                 # (B,) int64
        x = to_float32(to_device(images, self.device))    # [0, 1], on the device
        if self.augment is not None:
            x = self.augment(x, self.rng if rng is None else rng)
        if self.normalize:
            x = transforms.normalize(x, self.dataset.mean, self.dataset.std)
        y = to_device(labels.astype(np.int64, copy=False), self.device)
        return x, y

    def __repr__(self):
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, device={self.device!r}, augment={self.augment!r})")


def batches(dataset, batch_size, shuffle=True, rng=None, drop_last=False, device="cpu",
            augment=None, normalize=True):
    """A :class:`DataLoader` over ``dataset``: iterate it for (x, y) batches, ``len()`` counts them.

        >>> train, test = load_dataset('digits')                       # doctest: +SKIP
        >>> for x, y in batches(train, 64, rng=0, augment=train.augment):  # doctest: +SKIP
        ...     loss = criterion(model(x), y)
    """
    return DataLoader(dataset, batch_size, shuffle=shuffle, rng=rng, drop_last=drop_last,
                      device=device, augment=augment, normalize=normalize)
