"""Read TensorFlow checkpoints (the "tensor bundle" format) with NumPy alone, safely.

``tf.train.Checkpoint.write("x.ckpt")`` and Keras 2's ``model.save_weights("x.ckpt")`` leave::

    x.ckpt.index                   which tensors there are, and where (a sorted string table)
    x.ckpt.data-00000-of-00001     their bytes, one after another ("shards": 1 or more files)
    checkpoint                     (save, save_weights) text: model_checkpoint_path: "x.ckpt"

The ``.index`` is a LevelDB *sorted string table*: key/value records, sorted by key, in blocks::

    +--------------+-----+--------------+-------------+-----------+------------------+
    | data block 0 | ... | data block n | index block | metaindex | footer, 48 bytes |
    +--------------+-----+--------------+-------------+-----------+------------------+
    footer = the handles of metaindex and index block, padding to 40 bytes, magic number
    block  = records, restart offsets (uint32 each), their count; then 1 byte compression type
             (0 none, 1 snappy) and the masked CRC32C of contents + that byte
    record = varint shared, varint unshared, varint value length, key[shared:], value

Sorted keys share prefixes, so a record keeps only what differs from the previous key; every
16th record (a *restart point*) keeps its whole key, for binary search. The index block has a
record per data block: a key >= the block's last key -> the block's handle (varint offset,
varint size). TensorFlow writes uncompressed blocks since 1.2 (1.1 could snappy-compress them:
:func:`minires.weights.wire.snappy_decompress` reads those). Every checksum is verified.

The values are protocol buffers. Key ``""`` holds the ``BundleHeaderProto`` (``num_shards``,
``endianness``, ``version``); every other key, a variable's path such as
``layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE``, a ``BundleEntryProto``: ``dtype``,
``shape``, ``shard_id``, ``offset``, ``size``, ``crc32c`` (masked) and ``slices`` (set for a
partitioned variable). The tensor is ``size`` bytes at ``offset`` in shard ``shard_id``: its
elements, little-endian, C order. ``_CHECKPOINTABLE_OBJECT_GRAPH`` is a string tensor (the
object graph, itself a protobuf), listed here but never read.

Everything in the index is a claim from a stranger: its size is bounded before it is read,
every varint, length, handle, key and shape is checked before use, the keys must be sorted,
and every entry must fit in its shard -- all when the checkpoint is opened, before any tensor
is read, so a caller can compare the whole listing with a model first.
"""
import math
import os
import re
import stat
from typing import NamedTuple, Optional

import numpy as np

from .common import OutputBudget, WeightsError, bfloat16_to_float32, check_shape, open_regular_file
from .crc32c import crc32c, unmask
from .wire import message, snappy_decompress, varint

# ------------------------------------------------------------------ bounds, each with its reason
MAX_INDEX_BYTES = 64 << 20        # ~150 bytes per tensor: room for 400,000 tensors; read whole
MAX_ENTRIES = 50_000              # Keras's ResNet-101: 627 (x3 with Adam's slots); 50,000 open in ~1.3 s
MAX_KEY_BYTES = 4096              # keys are object paths of ~100 bytes; checked before a key is built
MAX_SHARDS = 10_000               # one shard per device, or per piece of a size-limited save
MAX_BLOCK_BYTES = 4 << 20         # a snappy block's declared size: 16 x TensorFlow's 256 KiB blocks
MAX_CHECKPOINT_FILE_BYTES = 1 << 20   # the `checkpoint` text file: a few paths and timestamps
FOOTER_BYTES, MAGIC = 48, 0xDB4775248B80FB57
BUNDLE_VERSION = 1                # tensor_bundle.cc's kTensorBundleVersion: what this reader is

# TensorFlow DataType number -> (name, NumPy dtype of the stored bytes, dtype read() returns):
# bfloat16 is widened exactly to float32, bool normalised to 0/1; string (7) and variant (21)
# hold serialized objects (length-prefixed bytes), so they are listed but never read.
DTYPES = {1: ("float32", "<f4", "f4"), 2: ("float64", "<f8", "f8"), 3: ("int32", "<i4", "i4"),
          4: ("uint8", "u1", "u1"), 5: ("int16", "<i2", "i2"), 6: ("int8", "i1", "i1"),
          8: ("complex64", "<c8", "c8"), 9: ("int64", "<i8", "i8"), 10: ("bool", "u1", "?"),
          14: ("bfloat16", "<u2", "f4"), 17: ("uint16", "<u2", "u2"), 18: ("complex128", "<c16", "c16"),
          19: ("float16", "<f2", "f2"), 22: ("uint32", "<u4", "u4"), 23: ("uint64", "<u8", "u8"),
          7: ("string", None, None), 21: ("variant", None, None)}
_STORED = {name: stored for name, stored, _ in DTYPES.values()}


class Entry(NamedTuple):
    """One tensor as the index describes it (every field checked). ``dtype``: the NumPy dtype
    :meth:`TFCheckpoint.read` returns (float32 for bfloat16), None for string/variant tensors."""
    dtype: Optional[np.dtype]
    shape: tuple
    shard_id: int
    offset: int
    size: int
    crc32c: int                   # unmasked: the CRC32C of the tensor's bytes
    tf_dtype: str                 # TensorFlow's name: "float32", "bfloat16", "string" ...


# ------------------------------------------------------------------ files: stat first, never a FIFO
def _stat_regular(path):
    """Size of the regular file at ``path``; a FIFO, device or folder is refused before any open
    (and opened with ``common.open_regular_file``, which checks again what it opened)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device"
        raise WeightsError(f"{path}: {kind}, not a regular file")
    return st.st_size


def _read_exactly(path, limit, what):
    size = _stat_regular(path)
    if size > limit:
        raise WeightsError(f"{path}: {size} bytes; {what} of at most {limit} bytes expected")
    with open_regular_file(path) as f:
        raw = f.read(size + 1)
    if len(raw) != size:
        raise WeightsError(f"{path}: changed while being read ({len(raw)} bytes, not {size})")
    return raw


# ------------------------------------------------------------------ where the checkpoint is
_SHARD_NAME = re.compile(r"\.data-\d{5}-of-\d{5}$")
_CKPT_PATH = re.compile(rb"""^[ \t]*model_checkpoint_path[ \t]*:[ \t]*"""
                        rb"""(?:"((?:[^"\\\n]|\\.)*)"|'((?:[^'\\\n]|\\.)*)')""", re.M)
_ESCAPE = re.compile(rb"\\([0-7]{1,3}|x[0-9a-fA-F]{1,2}|.)", re.S)
_SIMPLE = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"a": b"\a", b"b": b"\b", b"f": b"\f", b"v": b"\v"}


def _unescape(m):
    e = m.group(1)
    if e[:1] == b"x":
        return bytes([int(e[1:], 16)])
    if e[:1].isdigit():
        return bytes([int(e, 8) & 0xFF])
    return _SIMPLE.get(e, e)


def _named_in_checkpoint_file(folder):
    """The prefix a folder's ``checkpoint`` file names (TensorFlow's text-format CheckpointState)."""
    path = os.path.join(folder, "checkpoint")
    if not os.path.lexists(path):
        raise FileNotFoundError(2, "no 'checkpoint' file in the folder", path)
    m = _CKPT_PATH.search(_read_exactly(path, MAX_CHECKPOINT_FILE_BYTES, "a text file"))
    if not m:
        raise WeightsError(f'{path}: no line model_checkpoint_path: "..." found')
    try:
        name = _ESCAPE.sub(_unescape, m.group(1) if m.group(1) is not None else m.group(2)).decode("utf-8")
    except UnicodeDecodeError as e:
        raise WeightsError(f"{path}: model_checkpoint_path is not UTF-8 ({e})") from None
    if not name or "\x00" in name or os.path.isabs(name) or ".." in re.split(r"[/\\]", name):
        raise WeightsError(f"{path}: model_checkpoint_path {name[:200]!r} must be a relative name inside "
                           f"{folder} (no absolute path, no '..'); give the checkpoint's path directly instead")
    return os.path.join(folder, name)


def _inside(path, folder, via):
    """``path``, symlinks resolved, must lie in ``folder`` (a ``checkpoint`` file cannot lead out)."""
    real, top = os.path.realpath(path), os.path.realpath(folder)
    if not real.startswith(top.rstrip(os.sep) + os.sep):
        raise WeightsError(f"{via}: names {path}, which resolves to {real}, outside {top}")


def _resolve(path):
    path, folder = os.fspath(path), None
    if os.path.isdir(path) or os.path.basename(path) == "checkpoint":
        folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
        prefix = _named_in_checkpoint_file(folder)
    else:
        prefix = path
        if os.path.lexists(path):
            _stat_regular(path)                 # a FIFO or a device given: refused, never opened
            prefix = path[:-len(".index")] if path.endswith(".index") else _SHARD_NAME.sub("", path)
    index = prefix + ".index"
    if not os.path.lexists(index):
        raise FileNotFoundError(2, f"no TensorFlow checkpoint at {path} (looked for its index)", index)
    if folder is not None:
        _inside(index, folder, os.path.join(folder, "checkpoint"))
    _stat_regular(index)
    return prefix, index, folder


def resolve_checkpoint(path):
    """``(prefix, index path)`` of the checkpoint at ``path``: the prefix given to TensorFlow
    (``x.ckpt``), its ``x.ckpt.index``, one of its data shards, or a folder holding a ``checkpoint``
    file (its ``model_checkpoint_path`` must name a file inside that folder)."""
    return _resolve(path)[:2]


# ------------------------------------------------------------------ the protobuf messages (schemas)
HEADER = {1: ("num_shards", "int32"), 2: ("endianness", "int32"), 3: ("version", "bytes")}
VERSION = {1: ("producer", "int32"), 2: ("min_consumer", "int32"), 3: ("bad_consumers", "repeated int32")}
ENTRY = {1: ("dtype", "int32"), 2: ("shape", "bytes"), 3: ("shard_id", "int32"), 4: ("offset", "int64"),
         5: ("size", "int64"), 6: ("crc32c", "fixed32"), 7: ("slices", "repeated bytes")}
SHAPE = {2: ("dim", "repeated bytes"), 3: ("unknown_rank", "int64")}
DIM = {1: ("size", "int64")}


# ------------------------------------------------------------------ the sorted string table
def _block(raw, handle, after, what):
    """The contents of the block at ``handle`` (varint offset, varint size): it must start at or
    after ``after`` (blocks follow each other; none is read twice) and end before the footer;
    its checksum is verified. Returns (contents, where the block and its trailer end)."""
    offset, pos = varint(handle, 0, what)
    size, pos = varint(handle, pos, what)
    end = len(raw) - FOOTER_BYTES
    if pos != len(handle) or not after <= offset <= end or size > end - offset - 5:
        raise WeightsError(f"{what}: a block at {offset} of {size} bytes (+5): outside [{after}, {end})")
    body = raw[offset:offset + size + 1]                # the contents and the compression byte
    stored = unmask(int.from_bytes(raw[offset + size + 1:offset + size + 5], "little"))
    if crc32c(body) != stored:
        raise WeightsError(f"{what}: the block at {offset} has CRC32C {crc32c(body):#010x}, "
                           f"its trailer says {stored:#010x}")
    if body[-1] not in (0, 1):
        raise WeightsError(f"{what}: the block at {offset} has compression type {body[-1]}; "
                           "0 (none) or 1 (snappy) expected")
    if body[-1] == 1:
        return snappy_decompress(body[:-1], f"{what}: the block at {offset}", MAX_BLOCK_BYTES), offset + size + 5
    return body[:-1], offset + size + 5


def _records(block, what):
    """(key, value) of each record of a block, prefix-compressed keys rebuilt, restarts checked."""
    if len(block) < 8:
        raise WeightsError(f"{what}: a block of {len(block)} bytes, too short for its restart points")
    count = int.from_bytes(block[-4:], "little")
    if not 1 <= count <= (len(block) - 4) // 4:
        raise WeightsError(f"{what}: {count} restart points in a block of {len(block)} bytes")
    limit = len(block) - 4 * (count + 1)
    restarts = np.frombuffer(block, "<u4", count, offset=limit)   # ascending record starts
    pos, key, r = 0, b"", 0
    while pos < limit:
        start = pos
        shared, pos = varint(block, pos, what, 5)
        unshared, pos = varint(block, pos, what, 5)
        size, pos = varint(block, pos, what, 5)
        restart = bool(r < count and restarts[r] == start)
        if shared > len(key) or restart and shared or shared + unshared > MAX_KEY_BYTES:
            raise WeightsError(f"{what}: a record at {start} shares {shared} bytes of a {len(key)}-byte key "
                               f"and adds {unshared} (a restart shares none; keys of <= {MAX_KEY_BYTES} bytes)")
        if unshared + size > limit - pos:
            raise WeightsError(f"{what}: the record at {start} runs past its block")
        r += restart
        key = key[:shared] + block[pos:pos + unshared]
        yield key, block[pos + unshared:pos + unshared + size]
        pos += unshared + size
    if r != count and not (limit == 0 and count == 1 and restarts[0] == 0):
        raise WeightsError(f"{what}: restart point {int(restarts[r])} is not the start of a record")


def _table(raw, what):
    """Every (key, value) of the table in order, the keys strictly increasing."""
    if len(raw) < FOOTER_BYTES or int.from_bytes(raw[-8:], "little") != MAGIC:
        raise WeightsError(f"{what}: not a TensorFlow checkpoint index: its last 8 bytes are not the "
                           f"sorted string table's magic number {MAGIC:#x} ({len(raw)} bytes)")
    footer = raw[-FOOTER_BYTES:-8]
    _, pos = varint(footer, varint(footer, 0, what)[1], what)          # skip the metaindex's handle
    _, end = varint(footer, varint(footer, pos, what)[1], what)
    index, _ = _block(raw, footer[pos:end], 0, f"{what}: index block")
    previous, separator, block_end, count = None, None, 0, 0
    for bound, handle in _records(index, f"{what}: index block"):
        if separator is not None and bound <= separator:
            raise WeightsError(f"{what}: index block keys out of order")
        contents, block_end = _block(raw, handle, block_end, what)
        for key, value in _records(contents, what):
            if previous is not None and key <= previous:
                raise WeightsError(f"{what}: keys out of order: {key[:100]!r} after {previous[:100]!r} "
                                   "(a table's keys are sorted and unique)")
            if not (separator is None or separator < key) or key > bound:
                raise WeightsError(f"{what}: keys out of order: {key[:100]!r} lies outside its block's range "
                                   f"in the index block, up to {bound[:100]!r}")
            count += 1
            if count > MAX_ENTRIES + 1:
                raise WeightsError(f"{what}: more than {MAX_ENTRIES} entries")
            previous = key
            yield key, value
        separator = bound


# ------------------------------------------------------------------ the bundle
class TFCheckpoint:
    """A TensorFlow checkpoint, opened: its index read and every entry checked against its shard.

    ``entries``: ``{key: Entry}`` in key order (TensorFlow's). ``read(key, budget=None)``: that
    tensor as a native-endian, C-contiguous array, its bytes' CRC32C verified, charged to
    ``budget`` (a :class:`common.OutputBudget`) if given. Use it in a ``with`` block (the shards
    stay open until its end).
    """

    def __init__(self, path):
        self.prefix, self.index_path, folder = _resolve(path)
        where = self.index_path
        records = _table(_read_exactly(where, MAX_INDEX_BYTES, "a checkpoint index"), where)
        key, value = next(records, (None, None))
        if key != b"":
            found = "no records" if key is None else f"the first key {key[:100]!r}"
            raise WeightsError(f"{where}: {found}; a checkpoint index starts with its header, key b''")
        header = message(value, HEADER, f"{where}: header")
        version = message(header.get("version", b""), VERSION, f"{where}: header version")
        self.num_shards = header.get("num_shards", 0)
        if not 1 <= self.num_shards <= MAX_SHARDS:
            raise WeightsError(f"{where}: num_shards is {self.num_shards}; 1 to {MAX_SHARDS} expected")
        if header.get("endianness", 0) != 0:
            raise WeightsError(f"{where}: a big-endian bundle (endianness {header['endianness']}); "
                               "only little-endian checkpoints are read")
        if version.get("min_consumer", 0) > BUNDLE_VERSION or BUNDLE_VERSION in version.get("bad_consumers", []):
            raise WeightsError(f"{where}: written for readers of bundle version >= {version.get('min_consumer')}"
                               f" (not {version.get('bad_consumers', [])}); this one is version {BUNDLE_VERSION}")
        self.entries, self.shard_sizes, self._files = {}, {}, {}
        for key, value in records:
            if key[:1] == b"\x00":            # "\0<name>\0<slice>": one slice of a partitioned tensor
                name = key[1:].split(b"\x00")[0].decode("utf-8", "replace")
                raise WeightsError(f"{where}: {name!r} is saved in slices (a partitioned variable, or a tensor "
                                   "cut by a shard-size policy); minires reads whole tensors only")
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                raise WeightsError(f"{where}: key {key[:100]!r} is not UTF-8") from None
            entry = message(value, ENTRY, f"{where}: entry {name!r}")
            self.entries[name] = self._entry(f"{where}: entry {name!r}", entry, folder)

    def _entry(self, where, e, folder):
        if e.get("slices"):
            raise WeightsError(f"{where} is a partitioned variable saved in {len(e['slices'])} slices; "
                               "minires reads whole tensors only")
        if e.get("dtype", 0) not in DTYPES:
            raise WeightsError(f"{where}: TensorFlow dtype number {e.get('dtype', 0)}; supported: "
                               f"{', '.join(d[0] for d in DTYPES.values())}")
        tf_dtype, stored, returned = DTYPES[e.get("dtype", 0)]
        shape = message(e.get("shape", b""), SHAPE, f"{where}: shape")
        if shape.get("unknown_rank"):
            raise WeightsError(f"{where}: a shape of unknown rank")
        dims = [message(d, DIM, f"{where}: shape").get("size", 0) for d in shape.get("dim", [])]
        itemsize = np.dtype(stored).itemsize if stored else 1
        dims, count = check_shape(dims, itemsize, where)
        shard, offset, size = e.get("shard_id", 0), e.get("offset", 0), e.get("size", 0)
        if size != count * itemsize if stored else size < count:
            raise WeightsError(f"{where}: {tf_dtype} of shape {list(dims)} takes {count * itemsize} bytes"
                               f"{'' if stored else ' or more'}; the entry says {size}")
        if not 0 <= shard < self.num_shards or offset < 0:
            raise WeightsError(f"{where}: shard {shard} of {self.num_shards}, offset {offset}; a shard in "
                               f"[0, {self.num_shards}) and an offset >= 0 expected")
        path = self.shard_path(shard)
        if shard not in self.shard_sizes:
            if not os.path.lexists(path):
                raise WeightsError(f"{where}: its data shard {path} is missing")
            if folder is not None:
                _inside(path, folder, os.path.join(folder, "checkpoint"))
            self.shard_sizes[shard] = _stat_regular(path)
        if offset + size > self.shard_sizes[shard]:
            raise WeightsError(f"{where}: bytes [{offset}, {offset + size}) lie past the end of "
                               f"{path} ({self.shard_sizes[shard]} bytes)")
        return Entry(returned and np.dtype(returned), dims, shard, offset, size, unmask(e.get("crc32c", 0)),
                     tf_dtype)

    def shard_path(self, shard):
        return f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}"

    def read(self, key, budget=None):
        e = self.entries[key]
        path = self.shard_path(e.shard_id)
        if e.dtype is None:
            raise WeightsError(f"{path}: {key!r} is a {e.tf_dtype} tensor (serialized objects), not numbers")
        if budget is not None:
            budget.charge(math.prod(e.shape) * e.dtype.itemsize, f"{path}: {key!r}")
        if e.shard_id not in self._files:
            self._files[e.shard_id] = open_regular_file(path)
        f, buf = self._files[e.shard_id], np.empty(e.size, np.uint8)
        f.seek(e.offset)
        got = f.readinto(buf) if e.size else 0            # exactly size bytes, never more
        if got != e.size:
            raise WeightsError(f"{path}: {key!r}: {got} of {e.size} bytes at offset {e.offset} "
                               "(the shard changed since it was opened)")
        crc = crc32c(buf)
        if crc != e.crc32c:
            raise WeightsError(f"{path}: {key!r}: the {e.size} bytes at offset {e.offset} have CRC32C "
                               f"{crc:#010x}; the index says {e.crc32c:#010x}")
        a = buf.view(_STORED[e.tf_dtype]).reshape(e.shape)
        return bfloat16_to_float32(a) if e.tf_dtype == "bfloat16" else a.astype(e.dtype, copy=False)

    def close(self):
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_tf_checkpoint(path):
    """``{key: array}`` for every numeric tensor of the TensorFlow checkpoint at ``path`` (any form
    :func:`resolve_checkpoint` accepts), in key order; string tensors are skipped. At most
    ``common.EXPANSION`` x the shards' bytes + 16 MiB come out (tensors may share bytes)."""
    with TFCheckpoint(path) as ckpt:
        budget = OutputBudget(sum(ckpt.shard_sizes.values()))
        return {key: ckpt.read(key, budget) for key, e in ckpt.entries.items() if e.dtype is not None}
