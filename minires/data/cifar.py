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

A pickle is a program, and these are files from strangers (the folder on disk may not be
the one the archive held), so a batch is read by :func:`~minires.data.unpickle.load_pickle`,
which knows only the opcodes and calls a pickled numpy array needs and checks every size
before allocating, and then checked to be exactly what CIFAR ships: a dict with a uint8
(N, 3072) array and N labels 0..9 (and, in the published files, a batch label and N file
names). A batch of N images needs N x 3072 bytes in its file, so N is bounded by the file's
size, and so is the number of opcodes read (:data:`OPS_PER_IMAGE` per image).

The extracted folder is compared with the published files (:data:`FOLDER_MD5`) each time it
is read; a folder that is not the published CIFAR-10 is read as your own data set, with the
same strict reader, after a :class:`~minires.data.download.DataNotice` saying so.
"""
import os
import shutil
import tempfile
import warnings

import numpy as np

from .dataset import ArrayDataset, channel_mean_std
from .download import (DataError, DataNotice, check_md5, download_url, extract_tar, md5sum,
                       read_data_file, resolve_root)
from .pickle_calls import short_repr
from .transforms import CropFlip
from .unpickle import load_pickle

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
META_FILE = "batches.meta"
# The published MD5 of each file of the extracted folder, as torchvision lists them
# (torchvision/datasets/cifar.py: CIFAR10.train_list, CIFAR10.test_list, CIFAR10.meta).
FOLDER_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
# For reference: on the real training set channel_mean_std gives
# mean (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616). (The often-quoted
# std (0.2023, 0.1994, 0.2010) is an average of per-image stds, not the data set's std.)

IMAGE_BYTES = 3 * 32 * 32
OPS_PER_IMAGE = 16            # a label, a file name (up to 7 opcodes in protocol 2), memo stores
BASE_OPS = 4096               # the dict, the array's header, batches.meta
BATCH_KEYS = (b"data", b"labels", b"batch_label", b"filenames")
META_KEYS = (b"label_names", b"num_cases_per_batch", b"num_vis")
MAX_NAME = 100                # characters of a class name, a batch label or a file name


def _load(path):
    """The object pickled in the file ``path``, read with at most BASE_OPS + OPS_PER_IMAGE
    opcodes per image the file could hold."""
    raw = read_data_file(path)
    return load_pickle(raw, path, BASE_OPS + OPS_PER_IMAGE * (len(raw) // IMAGE_BYTES))


def _is_name(value):
    return isinstance(value, (bytes, str)) and len(value) <= MAX_NAME


def _integer_labels(path, raw, n):
    """The ``n`` labels as an int64 array: a list of ints 0..9 (as CIFAR ships them) or a 1-D
    integer array; strings, floats (even 3.0), bools and nesting are refused."""
    if isinstance(raw, np.ndarray):
        if raw.dtype.kind not in "iu":
            raise DataError(f"{path}: expected integer labels 0..9, got an array of dtype {raw.dtype}")
        labels = raw
    elif isinstance(raw, list) and all(type(v) is int for v in raw):
        if any(not 0 <= v <= 9 for v in raw):   # before np.array: an int may be 2**2000
            raise DataError(f"{path}: expected labels in 0..9, got values {short_repr(min(raw))}.."
                            f"{short_repr(max(raw))}")
        labels = np.array(raw, dtype=np.int64) if raw else np.zeros(0, np.int64)
    else:
        bad = next((v for v in raw if type(v) is not int), raw) if isinstance(raw, (list, tuple)) else raw
        raise DataError(f"{path}: expected b'labels' to be a list of integers 0..9, got "
                        f"{type(raw).__name__} holding {type(bad).__name__} {short_repr(bad, 40)}")
    if labels.shape != (n,):
        raise DataError(f"{path}: expected {n} labels (one per image), got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: expected labels in 0..9, got values {labels.min()}..{labels.max()}")
    return labels.astype(np.int64)


def read_batch(path):
    """Read one pickled CIFAR-10 batch: (images (n, 3, 32, 32) uint8, labels (n,) int64)."""
    batch = _load(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        got = f"keys {short_repr(list(batch))}" if isinstance(batch, dict) else short_repr(batch)
        raise DataError(f"{path} is not a CIFAR-10 batch: expected a dict with keys b'data' and "
                        f"b'labels', got {got}")
    extra = [k for k in batch if k not in BATCH_KEYS]
    if extra:
        raise DataError(f"{path}: expected only the keys {', '.join(map(repr, BATCH_KEYS))}, "
                        f"got also {short_repr(extra)}")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
        got = f"{data.dtype} of shape {data.shape}" if isinstance(data, np.ndarray) else short_repr(data)
        raise DataError(f"{path}: expected b'data' uint8 of shape (n, 3072), got {got}")
    n = data.shape[0]
    labels = _integer_labels(path, batch[b"labels"], n)
    names = batch.get(b"filenames", [b""] * n)
    if not _is_name(batch.get(b"batch_label", b"")) or not (
            isinstance(names, list) and len(names) == n and all(_is_name(x) for x in names)):
        raise DataError(f"{path}: expected b'batch_label' a name and b'filenames' {n} names, got "
                        f"{short_repr(batch.get(b'batch_label'))} and {short_repr(names)}")
    # Each row is [1024 red | 1024 green | 1024 blue], each plane row-major 32x32:
    # reshaping to (n, 3, 32, 32) puts channel, then row, then column -- NCHW, no transpose.
    images = data.reshape(-1, 3, 32, 32)
    return images, labels


def read_class_names(folder):
    """The 10 class names from ``batches.meta`` (falls back to the published names if absent)."""
    path = os.path.join(folder, META_FILE)
    if not os.path.lexists(path):
        return CIFAR10_CLASSES
    meta = _load(path)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if (not isinstance(names, list) or len(names) != 10 or not all(_is_name(n) for n in names)
            or any(k not in META_KEYS for k in meta)):
        raise DataError(f"{path}: expected a dict with b'label_names' (10 names) and at most "
                        f"b'num_cases_per_batch' and b'num_vis', got {short_repr(meta)}")
    try:
        return tuple(n.decode("utf-8") if isinstance(n, bytes) else n for n in names)
    except UnicodeDecodeError:
        raise DataError(f"{path}: expected class names in UTF-8, got {short_repr(names)}") from None


def published_or_own(folder):
    """Compare the folder's files with the published ones (MD5); if any differs, say so with a
    :class:`DataNotice`. Returns True for the published CIFAR-10."""
    names = TRAIN_BATCHES + TEST_BATCHES + (META_FILE,)
    present = [n for n in names if os.path.lexists(os.path.join(folder, n))]
    differ = [n for n in present if md5sum(os.path.join(folder, n)) != FOLDER_MD5[n]]
    differ += [n for n in names if n not in present]
    if not differ:
        return True
    if len(differ) == len(names):
        what = "none of its files is one of the published CIFAR-10's (MD5)"
    else:
        verb = "differs" if len(differ) == 1 else "differ"
        what = (f"{', '.join(differ)} {verb} from the published files (MD5), the other {len(names) - len(differ)} "
                "match: a damaged copy? Delete the folder to extract the archive again")
    warnings.warn(f"{folder}: {what}. Reading it as your own data set: each batch a dict of a uint8 "
                  "(N, 3072) array and N labels 0..9, N at most the file's size / 3072", DataNotice, stacklevel=3)
    return False


def read_cifar10_folder(folder):
    """Read an extracted ``cifar-10-batches-py`` folder into (train, test) ArrayDatasets.

    Its files are compared with the published ones first (a :class:`DataNotice` if they are
    not those); either way every batch is read by the strict, bounded reader of :func:`read_batch`.
    """
    missing = [b for b in TRAIN_BATCHES + TEST_BATCHES if not os.path.lexists(os.path.join(folder, b))]
    if missing:
        raise DataError(f"CIFAR-10 folder {folder} is incomplete: expected the files "
                        f"{', '.join(TRAIN_BATCHES + TEST_BATCHES)}, missing {', '.join(missing)}")

    def read_all(names):
        parts = [read_batch(os.path.join(folder, n)) for n in names]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    published_or_own(folder)
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
