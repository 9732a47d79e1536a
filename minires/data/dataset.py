"""ArrayDataset: a whole data set held in two arrays, images and labels.

The data sets minires uses are small enough to live in memory (CIFAR-10's 50,000 training
images are 150 MB as uint8), so a data set is nothing more than

    images  (N, C, H, W)  uint8 in 0..255, or float32 in [0, 1]
    labels  (N,)          int64 class indices in 0..K-1

plus the class names and the per-channel mean and standard deviation used to normalise
the inputs. Images stay uint8 until a batch is drawn: converting all of CIFAR-10 to float32
up front would take four times the memory for nothing.
"""
import numpy as np


class ArrayDataset:
    """Images (N, C, H, W) uint8 or float32, labels (N,) int64, class names, per-channel mean/std.

    ``mean`` and ``std`` are per channel (length C), on the [0, 1] scale, computed on the
    *training* split (the test split carries the training statistics, as it must: a model
    is evaluated on inputs normalised exactly as in training). ``augment`` is the data
    augmentation recommended for training on this split (a callable ``f(x, rng) -> x``, see
    :mod:`minires.data.transforms`) or None; the batch iterator applies it only if asked.
    """

    def __init__(self, images, labels, classes, mean, std, name=None, split=None, augment=None):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got shape {images.shape}")
        if images.dtype not in (np.uint8, np.float32):
            raise ValueError(f"images must be uint8 (0..255) or float32 ([0, 1]), got dtype {images.dtype}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(f"labels must have shape (N,) = ({images.shape[0]},) to match the images, "
                             f"got shape {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
        classes = tuple(str(c) for c in classes)
        K = len(classes)
        if labels.size and (labels.min() < 0 or labels.max() >= K):
            raise ValueError(f"labels must lie in 0..{K - 1} for {K} classes, "
                             f"got values from {labels.min()} to {labels.max()}")
        C = images.shape[1]
        mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        std = np.asarray(std, dtype=np.float32).reshape(-1)
        if mean.shape != (C,) or std.shape != (C,):
            raise ValueError(f"mean and std must have one value per channel, shape ({C},), "
                             f"got shapes {mean.shape} and {std.shape}")
        if not np.all(std > 0):
            raise ValueError(f"std must be positive in every channel, got {std.tolist()}")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = classes
        self.mean = mean
        self.std = std
        self.name = name
        self.split = split
        self.augment = augment
        self.origin = None      # after ``subset``: each image's index in the data set it came from

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, index):
        """(image (C, H, W), label) for an int; (images (B, C, H, W), labels (B,)) for a slice or index array."""
        return self.images[index], self.labels[index]

    @property
    def image_shape(self):
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    @property
    def num_classes(self):
        return len(self.classes)

    def class_counts(self):
        """(K,) int64: how many images of each class."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def subset(self, indices):
        """A new ArrayDataset with the images at ``indices`` (same classes, mean, std, augment); its
        ``origin`` says where each came from (an error can then name an image as the data set numbers it)."""
        indices = np.asarray(indices)
        part = ArrayDataset(self.images[indices], self.labels[indices], self.classes, self.mean,
                            self.std, name=self.name, split=self.split, augment=self.augment)
        part.origin = indices if self.origin is None else self.origin[indices]
        return part

    def __repr__(self):
        what = " ".join(str(s) for s in (self.name, self.split) if s is not None) or "unnamed"
        return (f"ArrayDataset({what}: {len(self)} images of shape {self.image_shape} "
                f"{self.images.dtype}, {self.num_classes} classes)")


def channel_mean_std(images, chunk=4096):
    """Per-channel mean and standard deviation of (N, C, H, W) images, on the [0, 1] scale.

    uint8 images are divided by 255 (as the batch iterator does). The sums are accumulated
    in float64 a chunk of images at a time, so 50,000 CIFAR images never need a float64
    copy of the whole set. The std is the population one: sqrt(E[x^2] - E[x]^2).
    Returns two float32 arrays of shape (C,).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"expected a non-empty image array (N, C, H, W), got shape {images.shape}")
    N, C, H, W = images.shape
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    total = np.zeros(C)
    total_sq = np.zeros(C)
    for start in range(0, N, chunk):
        x = images[start:start + chunk].astype(np.float64) / scale
        total += x.sum(axis=(0, 2, 3))
        total_sq += (x * x).sum(axis=(0, 2, 3))
    count = N * H * W
    mean = total / count
    var = np.maximum(total_sq / count - mean ** 2, 0.0)  # tiny negative values from rounding -> 0
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


# ----- what a trained model needs to know about its data set, kept in its checkpoint

MAX_CLASSES = 100_000       # classes in a description read from a file
MAX_SIDE = 4096             # pixels of an image side in one


def describe_dataset(dataset):
    """What a model trained on ``dataset`` needs to classify a new image, as JSON-ready values:
    ``{"name", "classes", "image_shape": [C, H, W], "mean", "std"}`` (mean and std on the [0, 1]
    scale). A training checkpoint keeps it; ``minires predict --checkpoint`` reads it back,
    checked by :func:`description_problems`."""
    return {"name": dataset.name, "classes": list(dataset.classes), "image_shape": list(dataset.image_shape),
            "mean": [float(m) for m in dataset.mean], "std": [float(s) for s in dataset.std]}


def _numbers(values, n, low_open):
    """Whether ``values`` is a list of ``n`` finite numbers >= 0 (> 0 if ``low_open``)."""
    return isinstance(values, list) and len(values) == n and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and (v > 0 if low_open else v >= 0)
        for v in values)


def description_problems(record):
    """Every problem with a data set description read from a file (see :func:`describe_dataset`),
    one sentence each; [] if none."""
    if not isinstance(record, dict):
        return [f"the data set description must be a dict, got {type(record).__name__}"]
    problems, classes, shape = [], record.get("classes"), record.get("image_shape")
    if not (isinstance(classes, list) and 2 <= len(classes) <= MAX_CLASSES and all(isinstance(c, str) for c in classes)
            and len(set(classes)) == len(classes)):
        problems.append(f"classes must be a list of 2 to {MAX_CLASSES:,} different names, got {classes!r:.80}")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                for v in shape)
            and shape[0] in (1, 3) and all(1 <= v <= MAX_SIDE for v in shape[1:])):
        problems.append(f"image_shape must be [C, H, W] with C 1 or 3 and H, W from 1 to {MAX_SIDE}, got {shape!r:.80}")
        return problems
    for key, low_open in (("mean", False), ("std", True)):
        if not _numbers(record.get(key), shape[0], low_open):
            problems.append(f"{key} must be a list of {shape[0]} finite numbers {'> 0' if low_open else '>= 0'}, "
                            f"got {record.get(key)!r:.80}")
    return problems


def as_trained(dataset, description, where):
    """``dataset`` normalised with the mean and std a model was trained with (``description``, see
    :func:`describe_dataset`), after checking that it has the model's classes, in its order: a
    ValueError naming ``where`` (the model's file) otherwise."""
    problems = description_problems(description)
    if problems:
        raise ValueError(f"{where}: its data set description is damaged: {'; '.join(problems)}")
    if tuple(description["classes"]) != dataset.classes:
        raise ValueError(f"{where} was trained on the classes {', '.join(description['classes']):.200}; "
                         f"{dataset.name} has {', '.join(dataset.classes):.200}")
    return ArrayDataset(dataset.images, dataset.labels, dataset.classes, description["mean"], description["std"],
                        name=dataset.name, split=dataset.split, augment=dataset.augment)
