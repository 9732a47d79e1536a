"""Data sets, transforms and batching for minires.

    >>> from minires.data import load_dataset, batches
    >>> train, test = load_dataset('digits')        # doctest: +SKIP
    >>> train                                       # doctest: +SKIP
    ArrayDataset(digits train: 1437 images of shape (1, 8, 8) float32, 10 classes)
    >>> for x, y in batches(train, 64, rng=0):      # doctest: +SKIP
    ...     ...                                     # x (64, 1, 8, 8) float32, y (64,) int64

Data sets (``DATASETS``):

- ``'digits'``        scikit-learn's 8x8 digits, offline; a fixed stratified 1,437/360 split
- ``'cifar10'``       CIFAR-10, 50,000/10,000 colour images 32x32
- ``'mnist'``         MNIST, 60,000/10,000 grey digits 28x28
- ``'fashion-mnist'`` Fashion-MNIST, same format, clothes instead of digits

or your own images: the path of a folder of class folders (:mod:`minires.data.folder`: class
names from the folder names, sorted; ``train/`` and ``test/`` folders, or a stratified 80/20
split; every image resized and centre-cropped to ``image_size``, default 32)::

    >>> train, test = load_dataset('photos/pets', image_size=64)   # doctest: +SKIP

Downloaded files are kept under ``root`` (default ``$MINIRES_DATA`` or ``~/.cache/minires``).
Data files are files from strangers: they are read with bounds (sizes checked against the
file before anything is allocated, pickles run by a small allow-list machine, see
:mod:`minires.data.unpickle`), and a bad file is a one-line :class:`DataError` naming it.
"""
import os

from .cifar import load_cifar10, read_batch, read_cifar10_folder
from .dataset import ArrayDataset, as_trained, channel_mean_std, describe_dataset, description_problems
from .digits import load_digits_dataset
from .download import (ChecksumError, DataError, DataNotice, default_root, download_url, extract_tar,
                       md5sum)
from .folder import DEFAULT_IMAGE_SIZE, is_folder_path, load_image_folder
from .images import square_image
from .loader import DataLoader, batches
from .mnist import load_mnist, read_idx, write_idx
from .split import hold_out, stratified_split
from .transforms import CropFlip, normalize, random_crop, random_hflip, to_float32

DATASETS = ("digits", "cifar10", "mnist", "fashion-mnist")


def load_dataset(name, root=None, download=True, image_size=None):
    """(train, test) ArrayDatasets for one of ``DATASETS``, or for a folder of your own images.

    ``name``: a name from ``DATASETS`` (any case), or the path of a folder of class folders
    (a name wins over a folder of the same name: write ``./digits`` for the folder).
    ``root`` is the data folder (default ``$MINIRES_DATA`` or ``~/.cache/minires``);
    with ``download=False`` a missing data set is a FileNotFoundError instead of a download.
    'digits' ships with scikit-learn and ignores both; so does a folder.
    ``image_size``: a folder's images are made image_size x image_size (default 32); the
    built-in data sets come at their own size and refuse it.
    """
    key = name.lower() if isinstance(name, str) else None
    if key in DATASETS and image_size is not None:
        raise ValueError(f"image_size is for a folder of your own images; {key} comes at its published size, "
                         f"got image_size={image_size!r:.80}")
    if key == "digits":
        return load_digits_dataset()
    if key == "cifar10":
        return load_cifar10(root=root, download=download)
    if key in ("mnist", "fashion-mnist"):
        return load_mnist(root=root, download=download, name=key)
    if is_folder_path(name):
        return load_image_folder(name, DEFAULT_IMAGE_SIZE if image_size is None else image_size)
    raise ValueError(data_problem(name))


def data_problem(data):
    """None if ``data`` is what a training configuration may name (a name from ``DATASETS``, or
    the path of a folder: a string with a path separator, or an existing folder's name); else the
    sentence saying what it must be. A folder is not read here: it may be gone, for a checkpoint."""
    if data in DATASETS or (isinstance(data, str) and is_folder_path(data)):
        return None
    here = ""
    if isinstance(data, str) and data:
        here = (f" ({data!r:.80} is a file, not a folder)" if os.path.exists(data) else
                f" (no folder {data!r:.80} in {os.getcwd()})")
    return (f"unknown data set {data!r:.80}; valid names are: {', '.join(DATASETS)}, or the path of a folder of "
            f"class folders{here}")


__all__ = [
    "DATASETS", "load_dataset", "data_problem", "ArrayDataset", "channel_mean_std", "describe_dataset",
    "description_problems", "as_trained", "load_image_folder", "is_folder_path", "square_image", "DEFAULT_IMAGE_SIZE",
    "load_digits_dataset", "stratified_split", "hold_out", "load_cifar10", "read_batch", "read_cifar10_folder",
    "load_mnist", "read_idx", "write_idx",
    "DataError", "ChecksumError", "DataNotice", "default_root", "download_url", "extract_tar", "md5sum",
    "to_float32", "normalize", "random_crop", "random_hflip", "CropFlip",
    "DataLoader", "batches",
]
