"""The allow-list unpickler behind the torch reader: torch's tensor records, nothing else.

The pickle format has exactly two doors to the outside world, and we guard both:

* ``find_class(module, name)`` -- every global a pickle names (GLOBAL, STACK_GLOBAL,
  INST, OBJ, the copyreg extension opcodes) is looked up through it. We answer only the
  names in ``ALLOWED`` and only with our own stand-ins; ``os.system``, ``builtins.eval``,
  ``subprocess.call`` ... raise :class:`WeightsError` before anything runs.
* ``persistent_load(pid)`` -- torch's pointer from a tensor to its storage, the tuple
  ``('storage', storage_type, key, location, numel)`` (legacy files add a sixth entry,
  ``view_metadata``). We answer with a :class:`Storage` placeholder whose bytes the reader
  fills in afterwards.

The stand-ins are instances of tiny classes with ``__slots__`` and a ``__setstate__`` that
refuses, so a crafted BUILD opcode cannot modify them either.

What the allow-list cannot bound -- nesting depth, memo indices, lengths that run past the
data -- is checked by :func:`.pickle_scan.scan_pickle` on the opcodes before ``load`` runs
the C unpickler, and every storage size is an int in [0, 2**63) whose bytes fit in the file.
"""
import _compat_pickle
import collections
import pickle

import numpy as np

from .common import WeightsError, check_index
from .pickle_scan import scan_pickle

# torch.<Name>Storage -> the element type of the storage. BFloat16 has no NumPy dtype: its
# raw 16-bit patterns are read as uint16 and widened to float32 when a tensor is built.
STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "ByteStorage": "uint8", "CharStorage": "int8",
    "ShortStorage": "int16", "IntStorage": "int32", "LongStorage": "int64",
    "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "UntypedStorage": "uint8",
}


class _Frozen:
    """Base for everything the unpickler hands out: no __dict__, no BUILD."""
    __slots__ = ()

    def __setstate__(self, state):
        raise WeightsError(f"the pickle tries to modify a {type(self).__name__} (BUILD opcode); refused")


class StorageType(_Frozen):
    """Stand-in for ``torch.FloatStorage`` & co: only says which element type is stored."""
    __slots__ = ("name", "dtype", "bfloat16")

    def __init__(self, name):
        kind = STORAGE_DTYPES[name]
        self.name = name
        self.bfloat16 = kind == "bfloat16"
        self.dtype = np.dtype(np.uint16 if self.bfloat16 else kind)


class Storage(_Frozen):
    """One storage of the file: a flat run of ``numel`` elements, bytes filled in later.

    A legacy-format *view* storage (``root`` set) is a slice of another storage
    starting at element ``root_offset``.
    """
    __slots__ = ("key", "numel", "dtype", "bfloat16", "root", "root_offset", "_array")

    def __init__(self, key, numel, stype, root=None, root_offset=0):
        self.key, self.numel, self.root, self.root_offset = key, numel, root, root_offset
        self.dtype, self.bfloat16 = stype.dtype, stype.bfloat16
        self._array = None

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.numel * self.dtype.itemsize

    def fill(self, raw, byteorder):
        """Attach the storage's bytes (exactly ``nbytes`` of them) in the given byte order."""
        if len(raw) != self.nbytes:
            raise WeightsError(f"storage {self.key!r}: {len(raw)} bytes for {self.numel} elements "
                               f"of {self.itemsize} bytes")
        dtype = self.dtype.newbyteorder("<" if byteorder == "little" else ">")
        self._array = np.frombuffer(raw, dtype=dtype, count=self.numel)

    def array(self):
        """The storage as a read-only 1-D array in the file's byte order."""
        if self.root is not None:
            return self.root.array()[self.root_offset:self.root_offset + self.numel]
        if self._array is None:
            raise WeightsError(f"storage {self.key!r} was never filled with data")
        return self._array


class TensorRef(_Frozen):
    """A tensor as torch records it: which storage, where it starts, its size and strides."""
    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


# ----------------------------------------------------------- stand-ins for torch functions
# Signatures as in torch/_utils.py. They only record arguments: all checking happens when
# the tensor is materialised (pth.materialise), after the whole pickle has been read.

def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if backward_hooks:
        raise WeightsError("tensor with backward hooks (code) in a weights file; refused")
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):        # torch <= 0.3
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    return data                                                      # an nn.Parameter is its tensor


def _size(*args):
    return tuple(*args)                                              # torch.Size is a tuple of ints


def _ordered_dict(*args):
    return collections.OrderedDict(*args)


class _Allowed(_Frozen):
    """An allowed global, callable by the REDUCE opcode, immutable."""
    __slots__ = ("qualname", "_fn")

    def __init__(self, qualname, fn):
        self.qualname, self._fn = qualname, fn

    def __call__(self, *args, **kwargs):
        return self._fn(*args, **kwargs)

    def __repr__(self):
        return f"<allowed {self.qualname}>"


ALLOWED = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _size,
}


def allowed_names():
    """The globals a weights pickle may name, for error messages and documentation."""
    return sorted(f"{m}.{n}" for m, n in ALLOWED) + ["torch.<Type>Storage"]


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that knows only torch's tensor records.

    ``legacy=True`` accepts the six-entry persistent ids of the pre-zip format.
    ``max_bytes``: no storage may hold more bytes than this (what the file can hold: its size
    for a legacy file, the read budget for a zip). ``file`` must be seekable (the opcodes are scanned first, then unpickled).
    After ``load()``, :meth:`root_storages` lists the storages whose bytes are needed.
    """

    def __init__(self, file, legacy=False, max_bytes=None):
        super().__init__(file, encoding="utf-8")
        self.file, self.legacy, self.max_bytes = file, legacy, max_bytes
        self.storages = {}          # key -> Storage, in order of first appearance

    def find_class(self, module, name):
        # Protocol-2 pickles spell some names the Python 2 way ('__builtin__.eval',
        # 'commands.call'); translate, as pickle itself does, so the message names the real thing.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in ALLOWED:
            return _Allowed(f"{module}.{name}", ALLOWED[module, name])
        if module in ("torch", "torch.storage") and name in STORAGE_DTYPES:
            return StorageType(name)
        if (module, name) == ("torch._utils", "_rebuild_tensor_v3"):
            raise WeightsError("the file holds a tensor of a dtype without a typed storage (uint16/32/64, "
                               "float8 ...; torch writes those with _rebuild_tensor_v3), which is not supported")
        if module == "torch" and isinstance(name, str) and name.endswith("Storage"):
            raise WeightsError(f"unsupported tensor type torch.{name} (supported: "
                               f"{', '.join(sorted(STORAGE_DTYPES))})")
        raise WeightsError(f"refusing to load global '{module}.{name}': weights files may only name "
                           f"{', '.join(allowed_names())} (the same rule as torch.load(weights_only=True)). "
                           "If you trust this file, load it with PyTorch and re-save "
                           "model.state_dict() with torch.save")

    def persistent_load(self, pid):
        n = 6 if self.legacy else 5
        if not isinstance(pid, tuple) or len(pid) != n or pid[0] not in ("storage", b"storage"):
            raise WeightsError(f"unknown persistent id {pid!r:.200}; expected ('storage', type, key, "
                               f"location, numel{', view' if self.legacy else ''})")
        stype, key, _location, numel = pid[1:5]
        if isinstance(key, bytes):
            key = key.decode("ascii", "replace")
        if not isinstance(stype, StorageType) or not isinstance(key, str) or len(key) > 1000:
            raise WeightsError(f"malformed storage reference {pid!r:.200}")
        check_index(numel, f"the element count of storage {key!r}")
        if self.max_bytes is not None and numel * stype.dtype.itemsize > self.max_bytes:
            raise WeightsError(f"storage {key!r} claims {numel} elements of {stype.dtype.itemsize} bytes, "
                               f"more than the file can hold ({self.max_bytes} bytes)")
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = Storage(key, numel, stype)
        elif storage.dtype != stype.dtype or storage.bfloat16 != stype.bfloat16:
            raise WeightsError(f"storage {key!r} is used both as {storage.dtype} and as {stype.name}")
        view = pid[5] if self.legacy else None
        if view is None:
            return storage
        # Legacy view: (view_key, offset, view_numel) inside the root storage, in elements.
        if not (isinstance(view, tuple) and len(view) == 3 and type(view[1]) is int
                and type(view[2]) is int and 0 <= view[1] <= storage.numel and 0 <= view[2] <= storage.numel
                and view[1] + view[2] <= storage.numel):
            raise WeightsError(f"malformed storage view {view!r:.200} of storage {key!r} "
                               f"({storage.numel} elements)")
        return Storage(f"{key}[{view[1]}:{view[1] + view[2]}]", view[2], stype, storage, view[1])

    def root_storages(self):
        return list(self.storages.values())

    def load(self):
        start = self.file.tell()
        scan_pickle(self.file)              # depth, memo, lengths: refused before anything is built
        self.file.seek(start)
        try:
            return super().load()
        except WeightsError:
            raise
        except RecursionError as e:
            raise WeightsError("pickle nested too deeply") from e
        except Exception as e:   # UnpicklingError, EOFError, TypeError from a bad REDUCE ...
            raise WeightsError(f"corrupt or unsupported pickle ({type(e).__name__}: {e})") from e
