"""minires's own checkpoints: a NumPy ``.npz`` of arrays plus a JSON metadata entry.

An ``.npz`` is a zip archive of ``.npy`` files, one per array. We add one more entry,
``__metadata__``, holding the UTF-8 bytes of a JSON document as a uint8 array, so that the
file can be read back with ``np.load(path, allow_pickle=False)``: plain arrays only, no
pickle, nothing executable. The file is written atomically: a crash while saving leaves
the previous checkpoint as it was. It is read back with the bounded reader of
:mod:`.npz` (sizes and dtypes checked before decompressing), and the metadata may nest
at most 64 levels.
"""
import json
import os
import zipfile

import numpy as np

from ..files import check_regular_file
from .common import WeightsError, as_numpy_state_dict, atomic_write
from .npz import read_npz_arrays

METADATA_KEY = "__metadata__"
MAX_METADATA_DEPTH = 64
RUN_CHECKPOINTS = ("best.npz", "last.npz")   # what `minires train` writes in a run folder


def save_checkpoint(path, arrays, metadata=None):
    """Save ``arrays`` (name -> array) and ``metadata`` (JSON-serialisable dict) to ``path``.

    The file is an ``.npz`` whatever ``path`` is called (no suffix is added). Written to a
    temporary file in the same folder, then moved over ``path`` with ``os.replace``.
    """
    arrays = as_numpy_state_dict(arrays, "arrays")
    if METADATA_KEY in arrays:
        raise ValueError(f"{METADATA_KEY!r} is reserved for the checkpoint's metadata")
    for name, a in arrays.items():
        if a.dtype.hasobject:
            raise TypeError(f"arrays[{name!r}] has dtype object, which cannot be saved without pickle")
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        text = json.dumps(metadata, allow_nan=True, sort_keys=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"metadata must be JSON-serialisable (str, numbers, lists, dicts): {e}") from e
    meta = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    arrays[METADATA_KEY] = meta
    # What np.savez does, spelled out (np.savez itself would choke on an array called
    # 'file'): one '<name>.npy' member per array, stored uncompressed, no pickle allowed.
    with atomic_write(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, a, allow_pickle=False)


def _check_depth(obj, limit=MAX_METADATA_DEPTH):
    """JSON nested more than ``limit`` levels is refused (walked without recursion)."""
    todo = [(obj, 0)]
    while todo:
        value, depth = todo.pop()
        if depth > limit:
            raise WeightsError(f"checkpoint metadata nests more than {limit} levels; refused")
        if isinstance(value, dict):
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            todo.extend((v, depth + 1) for v in value)


def read_npz(path):
    """Read an ``.npz`` without pickle -> (ordered dict name -> array, metadata dict).

    Files written by ``np.savez`` without metadata give ``{}`` as metadata. Every array is
    a native-endian, C-ordered copy of a numeric dtype (see :mod:`.npz` for the checks).
    """
    try:
        arrays = read_npz_arrays(path)
    except WeightsError as e:
        if str(e).startswith(f"{os.fspath(path)}: "):
            raise
        raise WeightsError(f"{os.fspath(path)}: {e}") from e
    metadata = {}
    if METADATA_KEY in arrays:
        raw = arrays.pop(METADATA_KEY)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise WeightsError(f"{os.fspath(path)}: {METADATA_KEY} must be a 1-D uint8 array of JSON bytes, "
                               f"got {raw.dtype} of shape {raw.shape}")
        try:
            metadata = json.loads(raw.tobytes().decode("utf-8"))
        except RecursionError:
            raise WeightsError(f"{os.fspath(path)}: checkpoint metadata nests too deeply; refused") from None
        except (UnicodeDecodeError, ValueError) as e:
            raise WeightsError(f"{os.fspath(path)}: checkpoint metadata is not valid JSON ({e})") from e
        if not isinstance(metadata, dict):
            raise WeightsError(f"{os.fspath(path)}: checkpoint metadata must be a JSON object, "
                               f"got {type(metadata).__name__}")
        _check_depth(metadata)
    return arrays, metadata


def load_checkpoint(path):
    """Load a checkpoint written by :func:`save_checkpoint` -> (arrays, metadata).

    A missing ``path`` is a FileNotFoundError (``no checkpoint at x.npz``), a folder a WeightsError
    that names the checkpoints of ``minires train`` in it (``runs/x: a folder, not a checkpoint;
    did you mean runs/x/best.npz or runs/x/last.npz?``)."""
    check_regular_file(path, WeightsError, "checkpoint", suggest=RUN_CHECKPOINTS)
    return read_npz(path)
