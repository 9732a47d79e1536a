"""CIFAR-10: 60,000 colour images 32x32 in 10 classes (Krizhevsky, 2009), the data set of the
ResNet paper's section 4.2.

The "python version" archive holds a folder ``cifar-10-batches-py`` with six pickled batches
(``data_batch_1`` .. ``data_batch_5`` for training, ``test_batch``) and ``batches.meta``.
Each batch is a dict (written by Python 2, so its keys are bytes)::

    b'data'    uint8 array (10000, 3072): one image per row, *channel-planar*: the first
               1024 bytes are the red plane, then green, then blue, each 32 rows of 32
               pixels. So a row reshapes straight to (3, 32, 32) -- already NCHW.
    b'labels'  list of 10000 ints in 0..9

and ``batches.meta`` has ``b'label_names'`` (airplane, automobile, ...).

Pickle can run arbitrary code while loading, so the batches are read with an unpickler
that accepts only the few names a numpy array needs (see :class:`_ArrayUnpickler`).
"""
import codecs
import os
import pickle
import shutil
import tempfile

import numpy as np

from .dataset import ArrayDataset, channel_mean_std
from .download import DataError, check_md5, download_url, extract_tar, resolve_root
from .transforms import CropFlip

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
META_FILE = "batches.meta"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
# For reference: on the real training set channel_mean_std gives
# mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616). (The often-quoted
# std (0.2023, 0.1994, 0.2010) is an average of per-image stds, not the data set's std.)


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds numpy arrays, lists, dicts, ints and bytes.

    A pickle names the functions it wants called (``find_class``); we answer only for the
    ones numpy arrays need, under their old (``numpy.core``) and new (``numpy._core``) names,
    and refuse everything else, so a tampered file cannot run code.
    """

    _reconstruct = np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own array-rebuilding function
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # how Python 3 writes bytes in pickle protocol 2
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds "
                                         "only numpy arrays, lists and bytes") from None


def _unpickle(path):
    try:
        with open(path, "rb") as f:
            # encoding='bytes': the batches were pickled by Python 2; keep its strings as bytes.
            return _ArrayUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise
    except Exception as e:
        raise DataError(f"could not read CIFAR batch {path}: expected a pickled dict, "
                        f"got {type(e).__name__}: {e}") from e


def _integer_labels(path, raw):
    """The labels as an int64 array; strings, floats (even 3.0), bools and nesting are refused."""
    if isinstance(raw, np.ndarray):
        labels = raw
    elif isinstance(raw, (list, tuple)) and all(type(v) is int for v in raw):
        labels = np.array(raw, dtype=np.int64) if raw else np.zeros(0, np.int64)
    else:
        bad = next((v for v in raw if type(v) is not int), raw) if isinstance(raw, (list, tuple)) else raw
        raise DataError(f"{path}: expected b'labels' to be a list of integers 0..9, got "
                        f"{type(raw).__name__} holding {type(bad).__name__} {bad!r:.40}")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{path}: expected integer labels 0..9, got an array of dtype {labels.dtype}")
    return labels


def read_batch(path):
    """Read one pickled CIFAR-10 batch: (images (n, 3, 32, 32) uint8, labels (n,) int64)."""
    batch = _unpickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{path} is not a CIFAR-10 batch: expected a dict with keys b'data' and "
                        f"b'labels', got {keys}")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        got = f"{data.dtype} of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: expected b'data' uint8 of shape (n, 3072), got {got}")
    labels = _integer_labels(path, batch[b"labels"])
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: expected {data.shape[0]} labels (one per image), got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: expected labels in 0..9, got values {labels.min()}..{labels.max()}")
    # Each row is [1024 red | 1024 green | 1024 blue], each plane row-major 32x32:
    # reshaping to (n, 3, 32, 32) puts channel, then row, then column -- NCHW, no transpose.
    images = data.reshape(-1, 3, 32, 32)
    return images, labels.astype(np.int64)


def read_class_names(folder):
    """The 10 class names from ``batches.meta`` (falls back to the published names if absent)."""
    path = os.path.join(folder, META_FILE)
    if not os.path.exists(path):
        return CIFAR10_CLASSES
    meta = _unpickle(path)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if names is None or len(names) != 10:
        raise DataError(f"{path}: expected a dict with b'label_names' (10 names), got {meta!r:.200}")
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)


def read_cifar10_folder(folder):
    """Read an extracted ``cifar-10-batches-py`` folder into (train, test) ArrayDatasets."""
    missing = [b for b in TRAIN_BATCHES + TEST_BATCHES if not os.path.isfile(os.path.join(folder, b))]
    if missing:
        raise DataError(f"CIFAR-10 folder {folder} is incomplete: expected the files "
                        f"{', '.join(TRAIN_BATCHES + TEST_BATCHES)}, missing {', '.join(missing)}")

    def read_all(names):
        parts = [read_batch(os.path.join(folder, n)) for n in names]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    classes = read_class_names(folder)
    train_x, train_y = read_all(TRAIN_BATCHES)
    test_x, test_y = read_all(TEST_BATCHES)
    mean, std = channel_mean_std(train_x)
    train = ArrayDataset(train_x, train_y, classes, mean, std, name="cifar10", split="train",
                         augment=CropFlip(32, padding=4))  # the paper's: pad 4, crop 32x32, flip
    test = ArrayDataset(test_x, test_y, classes, mean, std, name="cifar10", split="test")
    return train, test


def _extract_atomically(archive, root):
    """Extract ``archive`` into a temporary folder, then move its batch folder into place."""
    final = os.path.join(root, FOLDER_NAME)
    tmp = tempfile.mkdtemp(dir=root, prefix=".cifar-extract-")
    try:
        extract_tar(archive, tmp)
        inner = os.path.join(tmp, FOLDER_NAME)
        if not os.path.isdir(inner):
            raise DataError(f"{archive} does not look like the CIFAR-10 python archive: expected a "
                            f"folder {FOLDER_NAME}/ inside, found {sorted(os.listdir(tmp))}")
        os.replace(inner, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def load_cifar10(root=None, download=True, url=None, md5=None, progress=True):
    """(train, test) ArrayDatasets of CIFAR-10: 50,000 / 10,000 images (3, 32, 32) uint8.

    Looks, in order, for ``root/cifar-10-batches-py`` (already extracted), then for the
    archive ``root/cifar-10-python.tar.gz`` (checked against its MD5, then extracted), then
    downloads the archive if ``download`` is true. ``root`` defaults to ``$MINIRES_DATA`` or
    ``~/.cache/minires``; ``url`` and ``md5`` default to the module constants
    ``CIFAR10_URL`` and ``CIFAR10_MD5`` (tests point them at a local server).
    """
    root = resolve_root(root)
    url = CIFAR10_URL if url is None else url
    md5 = CIFAR10_MD5 if md5 is None else md5
    folder = os.path.join(root, FOLDER_NAME)
    archive = os.path.join(root, ARCHIVE_NAME)
    if not os.path.isdir(folder):
        if not os.path.isfile(archive):
            if not download:
                raise FileNotFoundError(
                    f"CIFAR-10 not found: expected the folder {folder} or the archive {archive}, "
                    "found neither. Call with download=True, or download "
                    f"{url} into {root} yourself.")
            os.makedirs(root, exist_ok=True)
            download_url(url, archive, md5=md5, progress=progress)
        else:
            check_md5(archive, md5)
        _extract_atomically(archive, root)
    return read_cifar10_folder(folder)
