"""Splitting a data set in two, class by class: a test set, or a validation set.

Stratified: every class keeps its share on both sides, so a split of a data set whose
classes are unbalanced is as unbalanced as the data set, no more. Seeded: the same on every
machine, for a seed.

Why a validation set. A run that picks its best epoch, or any setting, by the test accuracy
has looked at the test set: the test accuracy of the pick is then optimistic, by as much as
the pick was lucky. So ``minires train`` holds out part of the *training* set
(:func:`hold_out`, ``val_fraction``, 10% by default: for CIFAR-10 the paper's 45k/5k), chooses
``best.npz`` by the accuracy on it, and measures the test set once, at the end, for the
chosen checkpoint (minires/train/loop.py).
"""
import math

import numpy as np

SPLIT_SEED = 0
TEST_FRACTION = 0.2
VALIDATION_STREAM = 2 ** 32 - 1    # hold_out's generator: default_rng([seed, this]), a stream no epoch uses


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


def hold_out(dataset, fraction, seed):
    """(train, validation): ``dataset`` (an ArrayDataset) split by :func:`stratified_split`, the
    held-out ``fraction`` of each class becoming the validation set (split 'validation', no
    augmentation). ``seed``: the run's; the split uses its own generator, ``default_rng([seed,
    VALIDATION_STREAM])``, so it is not the epochs' draws. Both keep ``dataset``'s mean and std.
    A ValueError if a class would be left with no training image."""
    train_idx, val_idx = stratified_split(dataset.labels, fraction, [seed, VALIDATION_STREAM])
    train, val = dataset.subset(train_idx), dataset.subset(val_idx)
    missing = [c for c, n, had in zip(dataset.classes, train.class_counts().tolist(), dataset.class_counts().tolist())
               if n == 0 and had]
    if missing:
        raise ValueError(f"the validation fraction {fraction:g} would leave no training image of class "
                         f"{', '.join(missing[:5]):.200} ({dataset.name} has {len(dataset)} training images); "
                         "hold out less (--val-fraction) or add images")
    val.split, val.augment = "validation", None
    return train, val
