"""The 1,000 ImageNet-1k class names, in the order torchvision's pretrained models use.

Output unit ``i`` of a classifier trained on ImageNet-1k scores class ``imagenet_classes()[i]``:
0 'tench', 1 'goldfish', ..., 281 'tabby', ..., 999 'toilet tissue'. The names are
torchvision's (``torchvision/models/_meta.py``), shipped as ``minires/predict/imagenet_classes.txt``,
one per line; the two WordNet names used twice are disambiguated there as torchvision does
(134 'crane bird' vs 517 'crane', 638 'maillot' vs 639 'maillot tank suit').
"""
import functools
from importlib import resources

import numpy as np

from ..backend import to_numpy

NUM_CLASSES = 1000


@functools.lru_cache(maxsize=1)
def imagenet_classes():
    """The class names as a tuple of 1,000 str, index = output unit of the classifier."""
    text = resources.files("minires.predict").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(text.splitlines())
    if len(names) != NUM_CLASSES or len(set(names)) != NUM_CLASSES:
        raise RuntimeError(f"minires/predict/imagenet_classes.txt is damaged: {len(names)} lines, "
                           f"{len(set(names))} distinct names; expected {NUM_CLASSES}")
    return names


def decode_predictions(logits, k=5):
    """The ``k`` most likely classes for each image.

    logits: (N, 1000) or (1000,) raw scores (before softmax), NumPy or CuPy.
    Returns, per image, a list of ``(class_index, class_name, probability)``, most likely first;
    a list of such lists for (N, 1000) input. Probabilities are the softmax of the logits.
    """
    z = np.asarray(to_numpy(logits), dtype=np.float64)
    single = z.ndim == 1
    z = z[None] if single else z
    if z.ndim != 2 or z.shape[1] != NUM_CLASSES:
        raise ValueError(f"logits must have shape (N, {NUM_CLASSES}) or ({NUM_CLASSES},), got {np.shape(logits)}")
    if not 1 <= k <= NUM_CLASSES:
        raise ValueError(f"k must be between 1 and {NUM_CLASSES}, got {k}")
    # Softmax with the maximum subtracted first: exp never overflows, the ratios are unchanged.
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    names = imagenet_classes()
    out = []
    for row in p:
        top = np.argsort(-row, kind="stable")[:k]
        out.append([(int(i), names[i], float(row[i])) for i in top])
    return out[0] if single else out
