"""MNIST and Fashion-MNIST: 70,000 grey 28x28 images in 10 classes, stored as IDX files.

The IDX format (LeCun et al.) is a tiny header followed by raw bytes, all big-endian::

    magic   4 bytes   0x00 0x00 <type> <ndim>; type 0x08 = unsigned byte
    dims    ndim x int32, e.g. 60000, 28, 28
    data    prod(dims) bytes, row-major (C order)

so the magic number is 0x0803 = 2051 for a stack of images (3 dimensions) and
0x0801 = 2049 for a vector of labels (1 dimension). The files are distributed gzip'd
(``train-images-idx3-ubyte.gz`` ...) and we read them without unpacking them to disk.
Fashion-MNIST (Xiao et al., 2017, Zalando) uses exactly the same files and names, with
photos of clothes instead of digits.
"""
import gzip
import math
import os
import struct
import tempfile
import zlib

import numpy as np

from .dataset import ArrayDataset, channel_mean_std
from .download import DataError, check_md5, download_from_mirrors, open_data_file, resolve_root

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (N,)

FILES = {  # role -> file name, the same for both data sets
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# Mirrors are tried in order; the MD5s are the published ones (as in torchvision).
SOURCES = {
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "http://yann.lecun.com/exdb/mnist/"],
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        "classes": tuple(str(d) for d in range(10)),
    },
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        "classes": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    },
}
# For reference, channel_mean_std on the real training sets gives
# MNIST mean 0.1307, std 0.3081; Fashion-MNIST mean 0.2860, std 0.3530.


GZIP_RATIO = 100             # a .gz file may declare at most 100x its size in data (MNIST's: 2-5x) ...
GZIP_SLACK = 16 << 20        # ... + 16 MiB
CHUNK = 1 << 20              # read 1 MiB at a time: memory grows only as data really arrives


def _read_upto(f, n, path):
    """Up to ``n`` bytes of ``f`` (decompressed as they come), in a bytearray."""
    data = bytearray()
    try:
        while len(data) < n:
            chunk = f.read(min(CHUNK, n - len(data)))
            if not chunk:
                break
            data += chunk
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        kind = "gzip file" if path.endswith(".gz") else "file"
        raise DataError(f"could not read {path}: expected a complete {kind}, got "
                        f"{type(e).__name__}: {e} (the file is truncated or corrupt)") from e
    return data


def read_idx(path, expected_magic):
    """Read an unsigned-byte IDX file (gzip'd if it ends in .gz) into a uint8 array.

    ``expected_magic`` is 2051 for images (returns (N, rows, cols)) or 2049 for labels
    (returns (N,)). A wrong magic number, or a data part shorter or longer than the header
    says, is a :class:`DataError` naming the file, what was expected and what came. The
    header's sizes are checked against the file's size before the data is read: a plain file
    must hold exactly that many bytes, a .gz file may declare at most ``GZIP_RATIO`` x its
    size (+ 16 MiB), and is decompressed only up to what its header declares.
    """
    path = os.fspath(path)
    with open_data_file(path) as raw:
        size = os.fstat(raw.fileno()).st_size
        gz = path.endswith(".gz")
        f = gzip.GzipFile(fileobj=raw) if gz else raw
        head = _read_upto(f, 4, path)
        if len(head) < 4:
            raise DataError(f"{path} is truncated: expected at least a 4-byte IDX header, got {len(head)} bytes")
        (magic,) = struct.unpack(">i", head)
        if magic != expected_magic:
            what = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}.get(expected_magic, "data")
            raise DataError(f"{path} is not an IDX {what} file: expected magic number {expected_magic} "
                            f"(0x{expected_magic:08x}), got {magic} (0x{magic & 0xffffffff:08x})")
        ndim = magic & 0xFF  # the last byte of the magic number counts the dimensions
        header = 4 + 4 * ndim
        dims_raw = _read_upto(f, 4 * ndim, path)
        if len(dims_raw) < 4 * ndim:
            raise DataError(f"{path} is truncated: expected a {header}-byte header, got {4 + len(dims_raw)} bytes")
        dims = struct.unpack(f">{ndim}i", dims_raw)
        if any(d < 0 for d in dims):
            raise DataError(f"{path} is corrupt: its header gives the dimensions {tuple(dims)}; "
                            "expected sizes >= 0")
        expected = math.prod(dims)                      # Python ints: no overflow
        if not gz:
            _check_size(path, dims, expected, size - header)
        elif expected > GZIP_RATIO * size + GZIP_SLACK:
            raise DataError(f"{path}: expected at most {GZIP_RATIO}x the file's {size} bytes (+ 16 MiB) of data, "
                            f"got a header declaring shape {tuple(dims)}, i.e. {expected} bytes; refused before "
                            "decompressing (a gzip bomb, or a header that lies)")
        data = _read_upto(f, expected + 1, path)         # one byte more: is there more than declared?
    _check_size(path, dims, expected, len(data), got="more" if len(data) > expected else None)
    return np.frombuffer(data, dtype=np.uint8, count=expected).reshape(dims)   # writable: over a bytearray


def _check_size(path, dims, expected, size, got=None):
    """The data part must be exactly ``expected`` bytes; ``got`` says what came, if not ``size``."""
    if size != expected:
        problem = "truncated" if size < expected else "longer than its header says"
        raise DataError(f"{path} is {problem}: header says shape {tuple(dims)}, i.e. {expected} "
                        f"data bytes, got {size if got is None else got}")


def write_idx(path, array):
    """Write a uint8 array with 1 or 3 dimensions as an IDX file (gzip'd if ``path`` ends in .gz).

    The inverse of :func:`read_idx`; written atomically (temporary file, then os.replace).
    """
    path = os.path.abspath(os.fspath(path))
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError(f"write_idx expects a uint8 array with 1 (labels) or 3 (images) dimensions, "
                         f"got {array.dtype} with shape {array.shape}")
    magic = 0x0800 | array.ndim  # 0x08: unsigned byte
    content = struct.pack(f">i{array.ndim}i", magic, *array.shape) + array.tobytes()
    if path.endswith(".gz"):
        content = gzip.compress(content, mtime=0)  # mtime=0: the same bytes every time
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".idx-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_mnist(root=None, download=True, name="mnist", mirrors=None, md5=None, progress=True):
    """(train, test) ArrayDatasets of MNIST or Fashion-MNIST: 60,000 / 10,000 images (1, 28, 28) uint8.

    ``name`` is 'mnist' or 'fashion-mnist'. The four .gz files live in ``root/<name>/``;
    missing ones are downloaded (if ``download``) from ``mirrors`` and every file is checked
    against ``md5`` (a dict file name -> digest). Both default to ``SOURCES[name]``. A file
    with no digest in ``md5`` (``md5={}``: a folder of your own files) is not checked, and is
    read as any IDX file is, bounded by the file's size (see :func:`read_idx`).
    """
    if name not in SOURCES:
        raise ValueError(f"name must be one of {tuple(SOURCES)}, got {name!r}")
    source = SOURCES[name]
    mirrors = source["mirrors"] if mirrors is None else list(mirrors)
    md5 = source["md5"] if md5 is None else md5
    folder = os.path.join(resolve_root(root), name)

    paths = {}
    for role, filename in FILES.items():
        path = os.path.join(folder, filename)
        if os.path.isfile(path):
            check_md5(path, md5.get(filename))
        elif download:
            os.makedirs(folder, exist_ok=True)
            download_from_mirrors(mirrors, filename, path, md5=md5.get(filename), progress=progress)
        else:
            raise FileNotFoundError(
                f"{name} not found: expected the file {path}, it does not exist. Call with "
                f"download=True, or put {', '.join(FILES.values())} into {folder} yourself.")
        paths[role] = path

    def read_split(split):
        images = read_idx(paths[f"{split}_images"], IMAGES_MAGIC)
        labels = read_idx(paths[f"{split}_labels"], LABELS_MAGIC)
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{name} {split}: expected one label per image, got {images.shape[0]} "
                            f"images and {labels.shape[0]} labels")
        if labels.size and labels.max() > 9:
            raise DataError(f"{paths[f'{split}_labels']}: expected labels in 0..9, got up to {labels.max()}")
        return images[:, None, :, :], labels.astype(np.int64)  # (N, 28, 28) -> (N, 1, 28, 28)

    train_x, train_y = read_split("train")
    test_x, test_y = read_split("test")
    mean, std = channel_mean_std(train_x)
    classes = source["classes"]
    # No augmentation by default: flipping a digit (or a shoe) changes what it is.
    train = ArrayDataset(train_x, train_y, classes, mean, std, name=name, split="train")
    test = ArrayDataset(test_x, test_y, classes, mean, std, name=name, split="test")
    return train, test
