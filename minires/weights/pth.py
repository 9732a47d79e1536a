"""Read PyTorch ``.pth`` / ``.pt`` files with NumPy alone, without running any code they name.

A ``torch.save`` file is a *pickle* (Python's object serialisation) of, usually, an
OrderedDict of tensors, plus the raw bytes of every tensor's storage kept beside it.
A pickle is a little program: it may name any importable function and call it
(``os.system``, ``eval`` ...), which is why loading an untrusted pickle is arbitrary code
execution. We therefore run it with an allow-list, like ``torch.load(weights_only=True)``:
every global the pickle names goes through ``find_class``, and only the handful that
torch itself writes for tensors is answered -- with *our* stand-ins, never the real torch
function. Anything else is refused with a :class:`WeightsError` naming the global.

Two container layouts exist:

* zip (torch >= 1.6, the default)::

      <prefix>/data.pkl        the pickle
      <prefix>/data/<key>      raw bytes of storage <key>
      <prefix>/byteorder       'little' or 'big' (absent in older files: little)
      <prefix>/version ...     format bookkeeping we do not need

  ``<prefix>`` is the file's base name when torch.save wrote to a path (``resnet18.pth``
  -> ``resnet18/``) and ``archive`` when it wrote to a buffer, so it is read from the archive.

* legacy (``_use_new_zipfile_serialization=False``, and files from torch < 1.6): five
  pickles one after the other -- magic number, protocol version, system info, the object,
  the list of storage keys -- then each storage as an int64 element count followed by its
  bytes, always little-endian.

A tensor is stored as (storage, storage_offset, size, stride): element ``[i, j]`` lives at
``storage[offset + i * stride[0] + j * stride[1]]``. A transposed tensor just has swapped
strides, and a slice keeps the whole storage with an offset, so both are read through
``as_strided`` on the storage -- after checking that every index stays inside it.

Bounds, because the file is a stranger's: the pickle's opcodes are scanned before it is
unpickled (:mod:`.pickle_scan`: nesting depth, memo indices, lengths); every size, stride
and offset is an int in [0, 2**63), at most 64 dimensions; archive members are read within
a budget of 2x the file's size + 16 MiB (overlapping or deflated members cannot multiply
it), and the arrays produced within 4x the file's size + 16 MiB, so 40 zero-stride tensors
over one 16-byte storage are refused instead of returning 675 MB.
"""
import collections
import io
import os
import zipfile

import numpy as np

from .common import WeightsError, OutputBudget, bfloat16_to_float32, check_index, check_shape
from .unpickler import RestrictedUnpickler, Storage, TensorRef

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C   # the first pickle of a legacy torch.save file
LEGACY_PROTOCOL = 1001                  # the second one
MAX_DEPTH = 64                          # nesting allowed in the unpickled object
MAX_PICKLE_BYTES = 1 << 30              # data.pkl holds names and shapes, not data: MBs at most
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


# --------------------------------------------------------------------------- zip layout

def _zip_prefix(names):
    """The folder holding data.pkl: 'archive/' or whatever name torch.save chose."""
    prefixes = [n[: -len("data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(prefixes) != 1:
        found = "none" if not prefixes else ", ".join(p + "data.pkl" for p in prefixes)
        raise WeightsError("a zip archive, but not one torch.save wrote: expected exactly one "
                           f"'<prefix>/data.pkl' entry, found {found}")
    prefix = prefixes[0]
    if prefix + "constants.pkl" in names or any(n.startswith(prefix + "code/") for n in names):
        raise WeightsError("this is a TorchScript archive (torch.jit.save), which holds code, not just "
                           "weights; load it in PyTorch and torch.save(model.state_dict(), path) instead")
    return prefix


def _read_member(zf, name, size_limit, budget):
    """One archive member's bytes, refusing a compression bomb (torch stores, never compresses)."""
    info = zf.getinfo(name)
    if info.file_size > size_limit:
        raise WeightsError(f"{name} claims {info.file_size} bytes, more than the {size_limit} expected")
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise WeightsError(f"{name} is stored uncompressed but claims {info.file_size} bytes "
                           f"in {info.compress_size}; corrupt archive")
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > 200 * info.compress_size + (1 << 20):
        raise WeightsError(f"{name} inflates {info.compress_size} bytes to {info.file_size}: "
                           "refusing a compression bomb")
    budget.charge(info.file_size, f"reading {name} ({info.file_size} bytes)")
    return zf.read(name)


def read_torch_zip(path):
    """Unpickle a zip-format torch.save file; tensors come back as NumPy arrays."""
    file_size = os.path.getsize(path)
    reads = OutputBudget(file_size, expansion=2)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        prefix = _zip_prefix(names)
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = _read_member(zf, prefix + "byteorder", 16, reads).decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise WeightsError(f"{prefix}byteorder says {byteorder!r}; expected 'little' or 'big'")
        pkl = _read_member(zf, prefix + "data.pkl", MAX_PICKLE_BYTES, reads)
        unpickler = RestrictedUnpickler(io.BytesIO(pkl), max_bytes=reads.limit)
        obj = unpickler.load()
        for storage in unpickler.root_storages():
            name = f"{prefix}data/{storage.key}"
            if name not in names:
                raise WeightsError(f"the pickle refers to storage {storage.key!r} but {name} is missing")
            got = zf.getinfo(name).file_size
            if got != storage.nbytes:
                raise WeightsError(f"{name} holds {got} bytes but the pickle says the storage has "
                                   f"{storage.numel} elements of {storage.itemsize} bytes "
                                   f"= {storage.nbytes} bytes")
            storage.fill(_read_member(zf, name, storage.nbytes, reads), byteorder)
    return _resolve(obj, budget=OutputBudget(file_size))


# --------------------------------------------------------------------------- legacy layout

def _read_exact(f, n, what):
    data = f.read(n)
    if len(data) != n:
        raise WeightsError(f"file truncated: {what} needs {n} bytes, only {len(data)} left")
    return data


def read_torch_legacy(data):
    """Unpickle a legacy (pre-zip) torch.save file given as bytes."""
    f = io.BytesIO(data)
    magic = RestrictedUnpickler(f, max_bytes=len(data)).load()
    if magic != LEGACY_MAGIC:
        raise WeightsError("a pickle, but not a torch.save file (its first value is not torch's "
                           "magic number); plain pickles are not loaded")
    version = RestrictedUnpickler(f, max_bytes=len(data)).load()
    if version != LEGACY_PROTOCOL:
        raise WeightsError(f"legacy torch file with protocol version {version!r}; expected {LEGACY_PROTOCOL}")
    RestrictedUnpickler(f, max_bytes=len(data)).load()      # system info: sizes of C types, unused
    unpickler = RestrictedUnpickler(f, legacy=True, max_bytes=len(data))
    obj = unpickler.load()
    keys = RestrictedUnpickler(f, max_bytes=len(data)).load()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise WeightsError(f"legacy torch file: expected a list of distinct storage keys, got {keys!r:.200}")
    storages = {s.key: s for s in unpickler.root_storages()}
    if set(keys) != set(storages):
        raise WeightsError(f"legacy torch file: storage keys {sorted(keys)} do not match the pickle's "
                           f"{sorted(storages)}")
    for key in keys:
        storage = storages[key]
        numel = int(np.frombuffer(_read_exact(f, 8, f"the size of storage {key}"), "<i8")[0])
        if numel != storage.numel:
            raise WeightsError(f"storage {key}: the pickle says {storage.numel} elements, "
                               f"the data says {numel}")
        storage.fill(_read_exact(f, storage.nbytes, f"storage {key}"), "little")
    return _resolve(obj, budget=OutputBudget(len(data)))


# --------------------------------------------------------------------------- tensors

def materialise(ref, budget=None):
    """The NumPy array a (storage, offset, size, stride) tensor record stands for.

    Checks every number first (ints in [0, 2**63), at most 64 dimensions), then that every
    index the strides can reach lies inside the storage, charges the bytes to ``budget``,
    and only then copies: the result is a C-contiguous, writeable, native-endian array that
    shares no memory with the file's bytes or with any other tensor.
    """
    storage = ref.storage
    if not isinstance(storage, Storage):
        raise WeightsError(f"a tensor's storage must come from the file, got {type(storage).__name__}")
    if not isinstance(ref.size, (tuple, list)) or not isinstance(ref.stride, (tuple, list)) \
            or len(ref.size) != len(ref.stride):
        raise WeightsError(f"bad tensor layout: size and stride must be tuples of ints of the same "
                           f"length, got {ref.size!r:.100} and {ref.stride!r:.100}")
    try:
        offset = check_index(ref.offset, "a tensor's storage offset")
        size, count = check_shape(ref.size, storage.itemsize, "a tensor's size")
        stride = tuple(check_index(s, "every stride of a tensor") for s in ref.stride)
    except WeightsError as e:
        raise WeightsError(f"bad tensor layout: {e}") from None
    out_dtype = np.dtype(np.float32) if storage.bfloat16 else storage.dtype.newbyteorder("=")
    if budget is not None:
        budget.charge(count * out_dtype.itemsize, f"a tensor of size {list(size)}")
    if count == 0:
        return np.zeros(size, dtype=out_dtype)
    # The furthest element: offset + sum((n - 1) * stride) must lie inside the storage.
    # (Every term is below 2**126 and there are at most 64: plain int arithmetic, fast.)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    flat = storage.array()
    if last >= flat.size:
        raise WeightsError(f"tensor of size {size}, stride {stride}, offset {offset} reaches element "
                           f"{last} of a storage with only {flat.size} elements (storage shorter than claimed)")
    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=size,
                                           strides=[s * flat.itemsize for s in stride], writeable=False)
    arr = np.array(view, order="C")                  # the copy: no view into the file's bytes
    if storage.bfloat16:
        return bfloat16_to_float32(arr.astype(np.uint16))
    return arr.astype(out_dtype, copy=False)


def _resolve(obj, depth=0, memo=None, budget=None):
    """Replace every tensor record in the unpickled structure by its NumPy array.

    ``memo`` maps id(object) -> result, so an object the pickle shares many times is
    converted once (a pickle can share a list with itself 2**64 times in 64 levels).
    ``budget`` (an :class:`.common.OutputBudget`) bounds the bytes of all arrays made.
    """
    memo = {} if memo is None else memo
    if depth > MAX_DEPTH:
        raise WeightsError(f"object nested deeper than {MAX_DEPTH} levels (or a cycle); not a state_dict")
    if not isinstance(obj, (TensorRef, dict, list, tuple)):
        return obj
    if id(obj) not in memo:
        if isinstance(obj, TensorRef):
            out = materialise(obj, budget)
        elif isinstance(obj, dict):
            out = collections.OrderedDict((k, _resolve(v, depth + 1, memo, budget)) for k, v in obj.items())
        else:
            out = type(obj)(_resolve(v, depth + 1, memo, budget) for v in obj)
        memo[id(obj)] = (obj, out)     # keep obj alive so its id is not reused
    return memo[id(obj)][1]


# --------------------------------------------------------------------------- state_dict

def _is_state_dict(obj):
    return isinstance(obj, dict) and all(isinstance(v, np.ndarray) for v in obj.values())


def extract_state_dict(obj, strip_module_prefix=True):
    """The name -> array dict in what a torch file held.

    * a dict whose values are all tensors is the state_dict itself;
    * otherwise a training checkpoint like ``{'state_dict': sd, 'epoch': 3, ...}`` is
      unwrapped: the first of the keys 'state_dict', 'model_state_dict', 'model' whose value
      is a dict of tensors is taken, the rest (optimizer state, epoch ...) is ignored;
    * with ``strip_module_prefix``, keys saved from ``nn.DataParallel`` (every key starting
      with 'module.') lose that prefix.
    """
    if not _is_state_dict(obj):
        inner = None
        if isinstance(obj, dict):
            inner = next((obj[k] for k in WRAPPER_KEYS if _is_state_dict(obj.get(k))), None)
        if inner is None:
            if isinstance(obj, dict):
                bad = next(k for k, v in obj.items() if not isinstance(v, np.ndarray))
                raise WeightsError(f"expected a state_dict (name -> tensor), but entry {bad!r} is a "
                                   f"{type(obj[bad]).__name__}, and none of {WRAPPER_KEYS} holds one")
            raise WeightsError(f"expected a state_dict (name -> tensor), the file holds a {type(obj).__name__}")
        obj = inner
    if not all(isinstance(k, str) for k in obj):
        raise WeightsError("state_dict keys must be strings")
    out = collections.OrderedDict(obj)
    if strip_module_prefix and out and all(k.startswith("module.") for k in out):
        out = collections.OrderedDict((k[len("module."):], v) for k, v in out.items())
    return out
