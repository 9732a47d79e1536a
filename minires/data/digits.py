"""The 8x8 handwritten digits bundled with scikit-learn: a real data set, offline, in a second.

1,797 images of the digits 0..9 (the UCI "optical recognition of handwritten digits" test
set): each pixel counts how many of the 4x4 blocks of a 32x32 bitmap were inked, so the
values are integers 0..16. We divide by 16 to get float32 in [0, 1].

There is no official train/test split, so we make one: stratified (every class keeps its
share, 80/20) and seeded (the same on every machine), written out in numpy below rather
than borrowed from scikit-learn (:func:`minires.data.split.stratified_split`), so that a
reader can see what "stratified" means.
"""
import numpy as np

from .dataset import ArrayDataset, channel_mean_std
from .split import SPLIT_SEED, TEST_FRACTION, stratified_split

DIGITS_CLASSES = tuple(str(d) for d in range(10))


def load_digits_arrays():
    """(images (1797, 1, 8, 8) float32 in [0, 1], labels (1797,) int64) from scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError("the 'digits' data set comes from scikit-learn, which is not installed: "
                          "pip install scikit-learn  (from a minires checkout: pip install \".[data]\")") from e
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]  # (N, 8, 8) -> (N, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    return images, labels


def load_digits_dataset(test_fraction=TEST_FRACTION, seed=SPLIT_SEED):
    """(train, test) ArrayDatasets of the 8x8 digits; 1,437 / 360 images with the defaults.

    No augmentation is recommended: flipping or shifting an 8x8 digit changes what it is.
    """
    images, labels = load_digits_arrays()
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    mean, std = channel_mean_std(images[train_idx])
    train = ArrayDataset(images[train_idx], labels[train_idx], DIGITS_CLASSES, mean, std,
                         name="digits", split="train")
    test = ArrayDataset(images[test_idx], labels[test_idx], DIGITS_CLASSES, mean, std,
                        name="digits", split="test")
    return train, test
