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

Downloaded files are kept under ``root`` (default ``$MINIRES_DATA`` or ``~/.cache/minires``).
Data files are files from strangers: they are read with bounds (sizes checked against the
file before anything is allocated, pickles run by a small allow-list machine, see
:mod:`minires.data.unpickle`), and a bad file is a one-line :class:`DataError` naming it.
"""
from .cifar import load_cifar10, read_batch, read_cifar10_folder
from .dataset import ArrayDataset, channel_mean_std
from .digits import load_digits_dataset, stratified_split
from .download import (ChecksumError, DataError, DataNotice, default_root, download_url, extract_tar,
                       md5sum)
from .loader import DataLoader, batches
from .mnist import load_mnist, read_idx, write_idx
from .transforms import CropFlip, normalize, random_crop, random_hflip, to_float32

DATASETS = ("digits", "cifar10", "mnist", "fashion-mnist")


def load_dataset(name, root=None, download=True):
    """(train, test) ArrayDatasets for one of ``DATASETS``.

    ``root`` is the data folder (default ``$MINIRES_DATA`` or ``~/.cache/minires``);
    with ``download=False`` a missing data set is a FileNotFoundError instead of a download.
    'digits' ships with scikit-learn and ignores both.
    """
    key = str(name).lower()
    if key == "digits":
        return load_digits_dataset()
    if key == "cifar10":
        return load_cifar10(root=root, download=download)
    if key in ("mnist", "fashion-mnist"):
        return load_mnist(root=root, download=download, name=key)
    raise ValueError(f"unknown data set {name!r}; valid names are: {', '.join(DATASETS)}")


__all__ = [
    "DATASETS", "load_dataset", "ArrayDataset", "channel_mean_std",
    "load_digits_dataset", "stratified_split", "load_cifar10", "read_batch", "read_cifar10_folder",
    "load_mnist", "read_idx", "write_idx",
    "DataError", "ChecksumError", "DataNotice", "default_root", "download_url", "extract_tar", "md5sum",
    "to_float32", "normalize", "random_crop", "random_hflip", "CropFlip",
    "DataLoader", "batches",
]
