"""Your own images: a folder of class folders, as torchvision's ``ImageFolder`` and Keras's
``image_dataset_from_directory`` read one.

    pets/                           pets/
      cat/  001.jpg 002.png ...       train/  cat/ ...  dog/ ...
      dog/  001.jpg ...               test/   cat/ ...  dog/ ...      (or val/)

* Classes are the class folders' names, sorted: class 0 is the first name in sort order.
* With ``train/`` and ``test/`` (or ``val/``) folders, each split is read from its own folder,
  and both must hold the same class folders. Otherwise the images are split into train and test
  the way the digits are (:func:`~minires.data.split.stratified_split`): 20% of each class
  to test, chosen by a generator seeded with 0, so the split is the same on every machine.
* An image is a file whose name ends in one of ``IMAGE_SUFFIXES`` (any case), in a class folder
  or any folder below it; names that start with a dot are skipped (``.DS_Store``, ``._cat.jpg``),
  other files are ignored. Files are read in sorted order.
* Each image is converted to RGB, its shorter side resized to ``image_size`` and the centre
  square cut out (:func:`minires.data.images.square_image`, which ``minires predict`` uses too),
  and kept as uint8: the data set is an :class:`~minires.data.dataset.ArrayDataset` of
  (N, 3, S, S) images, all in memory.
* The mean and std per channel are the training split's. The augmentation recommended for
  training is CIFAR's: pad S/8, random crop, random flip (``--no-augment`` where a mirrored
  image is another class).

A file that cannot be read as an image (truncated, corrupt, over Pillow's pixel limit) is
skipped and counted: one :class:`~minires.data.download.DataNotice` says how many and names the
first. A folder with no class folders, a single class, or a class with no image left is an
error naming the folder. Before any image is decoded, the files are counted: more than
``MAX_IMAGES``, or images that would take more than ``MAX_BYTES`` of memory, are refused
(loading needs up to twice that for a moment, while the splits are cut out).
"""
import os
import warnings

import numpy as np

from .dataset import ArrayDataset, channel_mean_std
from .split import SPLIT_SEED, TEST_FRACTION, stratified_split
from .download import DataError, DataNotice
from .images import square_image
from .transforms import CropFlip

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
DEFAULT_IMAGE_SIZE = 32        # CIFAR's: the CIFAR-style nets (resnet20 ...) were made for it
MAX_IMAGE_SIZE = 512           # ImageNet's 224 and more; a NumPy ResNet at 512 x 512 is slow already
MAX_IMAGES = 1_000_000         # files in one data set (ImageNet's training set is 1.28 million)
MAX_BYTES = 4 << 30            # the images in memory, N x 3 x S x S bytes: CIFAR-10 at 32 is 0.18 GB
TEST_SPLITS = ("test", "val")  # the name of a test split's folder, in order of preference


def is_folder_path(data):
    """Whether ``data`` names a folder rather than a data set: a path object, or a string that
    holds a path separator or names an existing folder (``load_dataset`` tries names first)."""
    if isinstance(data, os.PathLike):
        return True
    return isinstance(data, str) and bool(data) and ("/" in data or os.sep in data or os.path.isdir(data))


def check_image_size(image_size):
    """``image_size`` must be an int in 1 .. MAX_IMAGE_SIZE: a ValueError saying so."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
            or not 1 <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"image_size must be an integer from 1 to {MAX_IMAGE_SIZE} (MAX_IMAGE_SIZE, "
                         f"minires/data/folder.py), got {image_size!r:.80}")


def class_folders(folder):
    """The sorted names of the folders in ``folder`` that do not start with a dot."""
    return sorted(n for n in os.listdir(folder) if not n.startswith(".") and os.path.isdir(os.path.join(folder, n)))


def image_files(folder, budget):
    """The image files under ``folder`` (sorted, recursively, dot names skipped); more than
    ``budget`` is a DataError. Folder links are not followed (a link to itself would never end)."""
    found = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES):
                found.append(os.path.join(here, name))
        if len(found) > budget:
            raise DataError(f"{folder}: more than {MAX_IMAGES:,} image files in the data set (MAX_IMAGES, "
                            "minires/data/folder.py); refused")
    return found


def scan_split(folder, budget=None):
    """(classes, files, labels) of a folder of class folders, at most ``budget`` files (default
    MAX_IMAGES); no class folders, a single class or an empty class is a DataError naming the folder."""
    budget = MAX_IMAGES if budget is None else budget
    classes = class_folders(folder)
    if not classes:
        raise DataError(f"{folder} holds no class folders: put each class's images in a folder named after it "
                        f"({os.path.join(folder, 'cat', '001.jpg')}, {os.path.join(folder, 'dog', '001.jpg')}, ...)")
    if len(classes) == 1:
        raise DataError(f"{folder} holds one class folder, {classes[0]!r}: a classifier needs at least two classes")
    files, labels = [], []
    for k, name in enumerate(classes):
        found = image_files(os.path.join(folder, name), budget - len(files))
        if not found:
            raise DataError(f"{os.path.join(folder, name)} holds no images (files ending in "
                            f"{', '.join(IMAGE_SUFFIXES)})")
        files += found
        labels += [k] * len(found)
    return classes, files, np.asarray(labels, dtype=np.int64)


def read_images(files, image_size):
    """(uint8 images (N, 3, S, S) of the files that could be read, their indices in ``files``, the
    errors of those that could not). The memory is checked before the first file is opened."""
    need = len(files) * 3 * image_size * image_size
    if need > MAX_BYTES:
        raise DataError(f"{len(files):,} images of 3 x {image_size} x {image_size} would take {need / 2**30:.1f} GiB "
                        f"of memory, over MAX_BYTES ({MAX_BYTES / 2**30:.0f} GiB, minires/data/folder.py): "
                        "choose a smaller image size or fewer images")
    images = np.empty((len(files), 3, image_size, image_size), dtype=np.uint8)
    kept, errors = [], []
    for i, path in enumerate(files):
        try:
            images[len(kept)] = square_image(path, image_size, channels=3)
        except (OSError, ValueError) as e:          # unreadable, corrupt, over the pixel limit, empty
            errors.append(str(e))
            continue
        kept.append(i)
    return images[:len(kept)], np.asarray(kept, dtype=np.int64), errors


def layout(folder):
    """(train folder, test folder or None): the split folders, or None for a folder of class folders
    to be split here. A train/ without a test/ (or the other way round) is a DataError."""
    names = set(class_folders(folder))
    test = next((n for n in TEST_SPLITS if n in names), None)
    if "train" in names and test:
        return os.path.join(folder, "train"), os.path.join(folder, test)
    if "train" in names or test:
        have, lack = ("train", "test") if "train" in names else (test, "train")
        raise DataError(f"{folder} has a {have}/ folder but no {lack}/: give both, each holding the same class "
                        f"folders, or put the class folders in {folder} itself (20% are then kept for testing)")
    return folder, None


def load_image_folder(path, image_size=DEFAULT_IMAGE_SIZE, test_fraction=TEST_FRACTION, seed=SPLIT_SEED):
    """(train, test) ArrayDatasets of uint8 (N, 3, image_size, image_size) images from a folder of
    class folders (the layouts and rules are in this module's docstring)."""
    check_image_size(image_size)
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no folder at {folder}" if not os.path.exists(folder) else
                                f"{folder} is a file, not a folder of class folders")
    train_folder, test_folder = layout(folder)
    classes, files, labels = scan_split(train_folder)
    n_train = len(files)
    if test_folder is not None:
        test_classes, test_files, test_labels = scan_split(test_folder, MAX_IMAGES - n_train)
        if test_classes != classes:
            only = [", ".join(sorted(set(a) - set(b))) or "-"
                    for a, b in ((test_classes, classes), (classes, test_classes))]
            raise DataError(f"{test_folder} and {train_folder} must hold the same class folders; only in "
                            f"{os.path.basename(test_folder)}/: {only[0]}; only in train/: {only[1]}")
        files, labels = files + test_files, np.concatenate([labels, test_labels])
    images, kept, errors = read_images(files, image_size)
    if errors:
        warnings.warn(DataNotice(f"skipped {len(errors)} of {len(files):,} files in {folder} that could not be read "
                                 f"as images; the first: {errors[0]}"), stacklevel=2)
    labels, from_train = labels[kept], kept < n_train
    if test_folder is None:
        check_every_class(folder, classes, labels, len(errors), least=2)
        train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    else:
        check_every_class(train_folder, classes, labels[from_train], len(errors), least=1)
        check_every_class(test_folder, classes, labels[~from_train], len(errors), least=1)
        train_idx, test_idx = np.flatnonzero(from_train), np.flatnonzero(~from_train)
    return make_splits(folder, images, labels, classes, train_idx, test_idx, image_size)


def check_every_class(folder, classes, labels, skipped, least):
    """Every class must keep at least ``least`` readable images (two to split one folder in two)."""
    counts = np.bincount(labels, minlength=len(classes))
    for name, n in zip(classes, counts.tolist()):
        if n < least:
            why = f" ({skipped} unreadable files skipped)" if skipped else ""
            split = " to be split into train and test" if least > 1 else ""
            raise DataError(f"{os.path.join(folder, name)} holds {n} readable image{'s' * (n != 1)}{why}; "
                            f"each class needs at least {least}{split}")


def make_splits(folder, images, labels, classes, train_idx, test_idx, image_size):
    """The two ArrayDatasets; mean and std from the training images, CIFAR's crop-and-flip recommended."""
    name = os.path.basename(os.path.normpath(os.path.abspath(folder)))
    train_images = images[train_idx]
    mean, std = channel_mean_std(train_images)
    std = np.maximum(std, 1 / 255)   # a channel of one value (all-grey pictures) would divide by 0
    augment = CropFlip(image_size, padding=max(1, image_size // 8))
    train = ArrayDataset(train_images, labels[train_idx], classes, mean, std, name=name, split="train",
                         augment=augment)
    test = ArrayDataset(images[test_idx], labels[test_idx], classes, mean, std, name=name, split="test")
    return train, test
