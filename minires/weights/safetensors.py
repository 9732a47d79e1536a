"""The safetensors format, read and written by hand (no ``safetensors`` package).

Layout of a ``.safetensors`` file::

    8 bytes      N, the header length, unsigned little-endian
    N bytes      JSON header, UTF-8 (may end in spaces so the data starts 8-byte aligned):
                 {"conv1.weight": {"dtype": "F32", "shape": [64, 3, 7, 7],
                                   "data_offsets": [0, 37632]},
                  ...,
                  "__metadata__": {"any": "strings"}}
    the rest     the data region: every tensor's bytes, C order, little-endian, at
                 [begin, end) counted from the start of the data region

Unlike a pickle it contains no code, but the header can still lie. We check what the
reference implementation checks: the header length is sane and inside the file; the
tensors, sorted by offset, tile the data region exactly -- each one starts where the
previous ended (no overlap, no gap), holds prod(shape) * itemsize bytes, and the last
one ends at the end of the file. Anything else is a :class:`WeightsError`.
"""
import collections
import json
import math
import os

import numpy as np

from .common import WeightsError, as_numpy_state_dict, atomic_write, bfloat16_to_float32

MAX_HEADER_BYTES = 100_000_000        # the reference implementation's limit
METADATA_KEY = "__metadata__"

# safetensors dtype code -> NumPy dtype. BF16 is read as raw uint16 and widened to float32.
DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
    "C64": "<c8", "C128": "<c16",
}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in DTYPES.items() if k != "BF16"}


def _unique_keys(pairs):
    out = collections.OrderedDict()
    for key, value in pairs:
        if key in out:
            raise WeightsError(f"safetensors header lists {key!r} twice")
        out[key] = value
    return out


def _parse_header(raw):
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except WeightsError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise WeightsError(f"safetensors header is not valid UTF-8 JSON ({e})") from e
    if not isinstance(header, dict):
        raise WeightsError(f"safetensors header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop(METADATA_KEY, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WeightsError(f"safetensors {METADATA_KEY} must map strings to strings, got {metadata!r:.200}")
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise WeightsError(f"safetensors entry {name!r} must have exactly dtype, shape, data_offsets; "
                               f"got {info!r:.200}")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if code not in DTYPES:
            raise WeightsError(f"safetensors entry {name!r}: unsupported dtype {code!r} "
                               f"(supported: {', '.join(DTYPES)})")
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            raise WeightsError(f"safetensors entry {name!r}: shape must be a list of ints >= 0, got {shape!r:.200}")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(o) is int and o >= 0 for o in offsets)):
            raise WeightsError(f"safetensors entry {name!r}: data_offsets must be [begin, end], "
                               f"got {offsets!r:.200}")
        entries.append((name, code, tuple(shape), offsets[0], offsets[1]))
    return entries, dict(metadata)


def _check_layout(entries, data_len):
    """The tensors, in offset order, must tile [0, data_len) exactly."""
    expected = 0
    for name, code, shape, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin != expected or end < begin:
            what = "overlaps the previous tensor" if begin < expected else "leaves a gap before it"
            raise WeightsError(f"safetensors entry {name!r}: data_offsets [{begin}, {end}] {what} "
                               f"(expected it to start at byte {expected})")
        nbytes = math.prod(shape) * np.dtype(DTYPES[code]).itemsize
        if end - begin != nbytes:
            raise WeightsError(f"safetensors entry {name!r}: {code} of shape {list(shape)} needs {nbytes} "
                               f"bytes but data_offsets [{begin}, {end}] give {end - begin}")
        expected = end
    if expected != data_len:
        raise WeightsError(f"safetensors data region has {data_len} bytes but the tensors cover {expected}"
                           f"{' (file truncated?)' if expected > data_len else ''}")


def read_safetensors(path):
    """Read a ``.safetensors`` file -> (ordered dict name -> array, metadata dict of str).

    Arrays are native-endian copies; BF16 tensors are widened (exactly) to float32.
    """
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise WeightsError(f"safetensors file of {file_size} bytes: too short for the 8-byte header length")
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES:
            raise WeightsError(f"safetensors header claims {n} bytes; refusing more than {MAX_HEADER_BYTES}")
        if 8 + n > file_size:
            raise WeightsError(f"safetensors header claims {n} bytes but only {file_size - 8} follow "
                               "the length (truncated or corrupt file)")
        entries, metadata = _parse_header(f.read(n))
        data_len = file_size - 8 - n
        _check_layout(entries, data_len)
        data = f.read(data_len)
    if len(data) != data_len:
        raise WeightsError("safetensors file changed while being read")
    arrays = collections.OrderedDict()
    for name, code, shape, begin, end in entries:
        a = np.frombuffer(data, dtype=DTYPES[code], count=math.prod(shape), offset=begin).reshape(shape)
        arrays[name] = bfloat16_to_float32(a) if code == "BF16" else a.astype(a.dtype.newbyteorder("="))
    return arrays, metadata


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
