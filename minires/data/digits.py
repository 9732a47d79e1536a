"""The 8x8 handwritten digits bundled with scikit-learn: a real data set, offline, in a second.

1,797 images of the digits 0..9 (the UCI "optical recognition of handwritten digits" test
set): each pixel counts how many of the 4x4 blocks of a 32x32 bitmap were inked, so the
values are integers 0..16. We divide by 16 to get float32 in [0, 1].

There is no official train/test split, so we make one: stratified (every class keeps its
share, 80/20) and seeded (the same on every machine), written out in numpy below rather
than borrowed from scikit-learn, so that a reader can see what "stratified" means.
"""
import math

import numpy as np

from .dataset import ArrayDataset, channel_mean_std

DIGITS_CLASSES = tuple(str(d) for d in range(10))
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def stratified_split(labels, test_fraction=TEST_FRACTION, seed=SPLIT_SEED):
    """Split indices 0..N-1 into (train, test), keeping each class's share in both.

    ``labels`` (N,) ints. The test set gets ceil(N * test_fraction) images; each class gets
    its proportional share n_k * n_test / N, rounded down, and the images still missing go
    to the classes with the largest remainders (ties: smaller class index), so the total is
    exact. Within a class the test images are chosen by a seeded random permutation.
    Returns two sorted int64 index arrays.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty (N,) array, got shape {labels.shape}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    N = labels.shape[0]
    classes, counts = np.unique(labels, return_counts=True)
    n_test = math.ceil(N * test_fraction)

    # Largest-remainder allocation of n_test over the classes.
    ideal = counts * n_test / N
    per_class = np.floor(ideal).astype(np.int64)
    missing = n_test - per_class.sum()
    by_remainder = np.argsort(-(ideal - per_class), kind="stable")
    per_class[by_remainder[:missing]] += 1

    rng = np.random.default_rng(seed)
    test = []
    for k, n_k in zip(classes, per_class):
        members = np.flatnonzero(labels == k)
        # A permutation from sorting uniform random keys: it depends only on the generator's
        # bit stream (fixed for a seed), not on how numpy happens to implement shuffling.
        order = np.argsort(rng.random(members.size), kind="stable")
        test.append(members[order[:n_k]])
    test = np.sort(np.concatenate(test)).astype(np.int64)
    is_test = np.zeros(N, dtype=bool)
    is_test[test] = True
    train = np.flatnonzero(~is_test).astype(np.int64)
    return train, test


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
