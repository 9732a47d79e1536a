"""The safetensors format: read with the ``safetensors`` library, written by hand.

Layout of a ``.safetensors`` file::

    8 bytes      N, the header length, unsigned little-endian
    N bytes      JSON header, UTF-8 (may end in spaces so the data starts 8-byte aligned):
                 {"conv1.weight": {"dtype": "F32", "shape": [64, 3, 7, 7],
                                   "data_offsets": [0, 37632]},
                  ...,
                  "__metadata__": {"any": "strings"}}
    the rest     the data region: every tensor's bytes, C order, little-endian, at
                 [begin, end) counted from the start of the data region

It holds no code, but the header can lie: lengths past the end, offsets that overlap or
leave gaps, shapes whose product overflows, numbers with 4,000 digits. Reading is
therefore left to the format's own library (``safetensors``, Hugging Face's Rust reader,
fuzzed upstream), through its NumPy API: ``safe_open(path, framework="numpy")`` checks
the header length, the JSON, every shape against its byte span, and that the tensors tile
the data region exactly, before a tensor is read. minires then checks what it returns:
each name once, a dtype minires supports, at most 64 dimensions of at most 2**63 each
(NumPy's own limit, which an empty tensor with one huge dimension would break). BF16,
which NumPy lacks, is read as raw 16-bit patterns from the offsets the library has
validated and widened exactly to float32.

The writer stays a few lines of hand-written code (below): it is the spec, and the tests
read its files back through the library.
"""
import collections
import json
import os

import numpy as np

from .common import WeightsError, as_numpy_state_dict, atomic_write, bfloat16_to_float32, check_shape

METADATA_KEY = "__metadata__"

# safetensors dtype code -> NumPy dtype. BF16 is read as raw uint16 and widened to float32.
DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
    "C64": "<c8", "C128": "<c16",
}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in DTYPES.items() if k != "BF16"}


def _library():
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError as e:     # a core dependency; only a broken install lacks it
        raise ImportError("reading .safetensors files needs the safetensors package: "
                          "pip install safetensors") from e
    return SafetensorError, safe_open


def _unique_keys(pairs):
    out = collections.OrderedDict()
    for key, value in pairs:
        if key in out:
            raise WeightsError(f"safetensors header lists {key!r} twice")
        out[key] = value
    return out


def _header(f):
    """The JSON header as a dict (the library has validated it; this adds the duplicate check)."""
    n = int.from_bytes(f.read(8), "little")
    try:
        return json.loads(f.read(n).decode("utf-8"), object_pairs_hook=_unique_keys), 8 + n
    except WeightsError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise WeightsError(f"safetensors header is not valid UTF-8 JSON ({e})") from e


def read_safetensors(path):
    """Read a ``.safetensors`` file -> (ordered dict name -> array, metadata dict of str).

    Tensors come in the order of their data in the file (the order the writer used).
    Arrays are native-endian, C-contiguous, writeable copies; BF16 is widened exactly to
    float32. Anything the library or minires refuses is a :class:`WeightsError`.
    """
    SafetensorError, safe_open = _library()
    try:
        with safe_open(os.fspath(path), framework="numpy") as st:
            metadata = st.metadata() or {}
            with open(path, "rb") as f:
                header, data_start = _header(f)
                names = sorted(st.keys(), key=lambda k: tuple(header.get(k, {}).get("data_offsets", ())))
                arrays = collections.OrderedDict()
                for name in names:
                    arrays[name] = _read_tensor(st, f, name, header.get(name), data_start)
    except SafetensorError as e:
        raise WeightsError(f"not a valid safetensors file: the safetensors library says: {e}") from e
    return arrays, dict(metadata)


def _read_tensor(st, f, name, entry, data_start):
    """One tensor, after minires's own checks on the name, dtype and shape the library reports."""
    view = st.get_slice(name)
    code, shape = view.get_dtype(), view.get_shape()
    if code not in DTYPES:
        raise WeightsError(f"safetensors entry {name!r}: unsupported dtype {code!r} "
                           f"(supported: {', '.join(DTYPES)})")
    dtype = np.dtype(DTYPES[code])
    shape, count = check_shape(shape, dtype.itemsize, f"safetensors entry {name!r}")
    if not isinstance(entry, dict) or tuple(entry.get("shape", ())) != shape:
        raise WeightsError(f"safetensors entry {name!r}: the header and the library disagree on its shape")
    if code == "BF16":                  # NumPy has no bfloat16: raw bits at the validated offsets
        begin, end = entry["data_offsets"]
        if end - begin != 2 * count:
            raise WeightsError(f"safetensors entry {name!r}: BF16 of shape {list(shape)} needs "
                               f"{2 * count} bytes, data_offsets give {end - begin}")
        f.seek(data_start + begin)
        raw = f.read(end - begin)
        if len(raw) != end - begin:
            raise WeightsError("safetensors file changed while being read")
        return bfloat16_to_float32(np.frombuffer(raw, "<u2").reshape(shape))
    if count == 0:
        return np.zeros(shape, dtype.newbyteorder("="))
    a = st.get_tensor(name)
    if a.shape != shape or a.dtype.newbyteorder("=") != dtype.newbyteorder("="):
        raise WeightsError(f"safetensors entry {name!r}: the library returned {a.dtype} {a.shape}, "
                           f"expected {dtype} {shape}")
    return np.array(a, dtype=dtype.newbyteorder("="), order="C", copy=True)


def write_safetensors(path, arrays, metadata=None):
    """Write name -> array to ``path`` as safetensors, atomically.

    ``metadata`` (optional) must map str -> str. CuPy arrays are copied to the host.
    Dtypes: float16/32/64, int8..64, uint8..64, bool, complex64/128.
    """
    arrays = as_numpy_state_dict(arrays, "arrays")
    header = collections.OrderedDict()
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("safetensors metadata must map str -> str (encode other values, e.g. with json.dumps)")
        header[METADATA_KEY] = dict(metadata)
    offset = 0
    for name, a in arrays.items():
        if name == METADATA_KEY:
            raise ValueError(f"{METADATA_KEY!r} is reserved in safetensors and cannot name a tensor")
        code = _CODES.get(a.dtype.newbyteorder("="))
        if code is None:
            raise TypeError(f"cannot store {name!r} of dtype {a.dtype} in safetensors "
                            f"(supported: {', '.join(sorted(str(d) for d in _CODES))})")
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)                    # pad so the data starts 8-byte aligned
    with atomic_write(path) as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for a in arrays.values():
            f.write(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())
