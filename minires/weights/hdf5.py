"""An HDF5 file from a stranger: read that file and nothing else, in bounded time and memory.

HDF5 is a small file system inside a file, and h5py follows everything it holds without a
word. A Keras weights file needs none of the following, and each is an attack:

* **external storage** (``dataset.external``): the dataset's bytes live in *another file*,
  named by the file: ``/etc/passwd`` becomes a weight, a FIFO hangs the reader;
* **virtual datasets** (``dataset.is_virtual``): a view of datasets in other files (or of
  itself: HDF5 2.0 crashes the interpreter on that);
* **external links**: a name that opens an object in another file;
* **soft links**: a path to anywhere in the file, cycles included;
* **filters**: HDF5's deflate filter grows its output buffer until the stream ends, so a
  chunk of a (64,) dataset can inflate to 1 GiB before HDF5 notices it is too long.

So this module reads under five rules, each checked before the thing it guards:

1. The path is opened here, non-blocking, and ``fstat``-ed: a regular file, or a
   ``WeightsError``. h5py then reads through that one file object, never by name.
2. Names are walked one link at a time and only hard links are followed (Keras writes no
   other kind); an external or soft link where a weight belongs is refused, not followed.
3. A dataset is read only when its bytes are in this file: contiguous, compact or chunked,
   no external files, not virtual; its dtype a float of 2, 4 or 8 bytes.
4. Its shape and dtype are compared with what the caller expects before any byte is read,
   so the bytes read are bounded by the model's own size.
5. Chunked datasets are decoded here, not by HDF5: each raw chunk is read as stored
   (``read_direct_chunk``), inflated by zlib with an output limit, unshuffled by NumPy, LZF
   by :func:`lzf_decompress`. Other filters (szip, n-bit, scale-offset, plugins) are refused.

Anything h5py raises on a corrupt file (OSError, KeyError, RuntimeError ...) becomes a
``WeightsError`` at the reader's edge (:func:`guarded`).
"""
import contextlib
import os
import zlib

import numpy as np

from .common import WeightsError, open_regular_file

MAX_CHILDREN = 10_000        # links in one group: ResNet-152 has ~900 Keras layers
MAX_DEPTH = 32               # '/'-separated parts of a name; nesting of groups
MAX_NAME = 512               # bytes of one name or string attribute
MIN_CHUNK_BYTES = 4096       # a dataset may have 16 chunks + one per 4 KiB: bounds the chunk reads
FLOAT_SIZES = (2, 4, 8)      # float16, float32, float64
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

FILTER_DEFLATE, FILTER_SHUFFLE, FILTER_LZF = 1, 2, 32000
FILTER_NAMES = {1: "deflate (gzip)", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "n-bit", 6: "scale-offset",
                32000: "lzf"}


def h5py_module():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading Keras weight files needs h5py: pip install 'minires[keras]' "
                          "(or pip install h5py)") from None
    return h5py


# ------------------------------------------------------------------ rule 1: this file, a regular one
@contextlib.contextmanager
def open_hdf5(path):
    """``with open_hdf5(path) as f:`` an ``h5py.File`` read through a file object we opened (rule 1)."""
    h5py = h5py_module()
    path = os.fspath(path)
    with open_regular_file(path) as raw:
        if raw.read(8) != HDF5_MAGIC:
            raise WeightsError(f"{path}: not an HDF5 file (a Keras .h5 / .weights.h5 starts with \\x89HDF), "
                               "so not a Keras weights file")
        raw.seek(0)
        try:
            # A file object, not a name: HDF5 reads these bytes and opens nothing by this path again.
            # locking=False: a reader needs no fcntl lock, and taking one fails on read-only mounts.
            # HDF5 has no switch that stops it following external links or storage: rules 2-3 do.
            f = h5py.File(raw, "r", locking=False)
        except (OSError, ValueError, RuntimeError) as e:
            raise WeightsError(f"{path}: corrupt or truncated HDF5 file ({_short(e)})") from None
        try:
            yield f
        finally:
            with contextlib.suppress(Exception):
                f.close()


def _short(e):
    return f"{type(e).__name__}: {str(e)[:200]}"


@contextlib.contextmanager
def guarded(path):
    """Every failure inside becomes one ``WeightsError`` naming ``path`` (h5py raises OSError,
    KeyError, RuntimeError ... on corrupt files; none of those may reach the user raw)."""
    path = os.fspath(path)
    try:
        yield
    except WeightsError as e:
        if str(e).startswith(f"{path}: "):
            raise
        raise WeightsError(f"{path}: {e}") from None
    except (FileNotFoundError, ImportError, MemoryError):
        raise
    except Exception as e:      # noqa: BLE001 -- the file is corrupt; say so in one sentence
        raise WeightsError(f"{path}: corrupt HDF5 file ({_short(e)})") from None


# ------------------------------------------------------------------ rule 2: hard links only
def _link_kind(h5py, group, name):
    link = group.get(name, getlink=True)
    if link is None:
        return None
    if isinstance(link, h5py.HardLink):
        return "hard"
    return "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"


def child(group, name, what):
    """``group[name]`` walked one part of ``name`` at a time through hard links only; None if absent."""
    h5py = h5py_module()
    parts = [p for p in name.split("/") if p]
    if not parts or len(parts) > MAX_DEPTH or len(name) > MAX_NAME or any(p in (".", "..") for p in parts):
        raise WeightsError(f"{what}: {name[:60]!r} is not a plain relative name of at most {MAX_DEPTH} parts")
    node = group
    for part in parts:
        if not isinstance(node, h5py.Group):
            return None
        kind = _link_kind(h5py, node, part)
        if kind is None:
            return None
        if kind != "hard":
            raise WeightsError(f"{what}: {part!r} is {kind}; a weights file is read without following links "
                               "(Keras writes none, and a link can lead to another file or round in a cycle)")
        node = node[part]
    return node


def children(group, what, skip=()):
    """[(name, object)] of a group but those named in ``skip``, in HDF5's (alphabetical) order,
    through hard links only."""
    h5py = h5py_module()
    n = len(group)                  # HDF5 keeps the count: no walk
    if n > MAX_CHILDREN:
        raise WeightsError(f"{what}: {n} entries in one group; at most {MAX_CHILDREN} are allowed")
    out = []
    for name in group:
        if name in skip:
            continue
        if len(name) > MAX_NAME:
            raise WeightsError(f"{what}: a name of {len(name)} characters")
        if _link_kind(h5py, group, name) != "hard":
            raise WeightsError(f"{what}: {name!r} is {_link_kind(h5py, group, name)}; a weights file is read "
                               "without following links")
        out.append((name, group[name]))
    return out


def string_list(obj, attr, what, limit=MAX_CHILDREN):
    """An attribute holding a name or a list of names -> list of str; None if absent.

    Its shape and type are checked before it is read. Read variable-length strings (Keras's
    names) under :func:`memory_cap` (see there why): the caller holds it over the whole walk.
    """
    if attr not in obj.attrs:
        return None
    aid = obj.attrs.get_id(attr)
    shape, dtype = aid.shape, aid.dtype
    if shape is None:
        raise WeightsError(f"{what}: attribute {attr!r} is empty (a null dataspace); expected a list of names")
    if len(shape) > 1 or int(np.prod(shape)) > limit:
        raise WeightsError(f"{what}: attribute {attr!r} has shape {shape}; expected a list of at most {limit} names")
    if int(np.prod(shape)) == 0:
        return []
    h5py = h5py_module()
    is_text = dtype.kind in "SU" or h5py.check_string_dtype(dtype) is not None
    if not is_text or dtype.itemsize > MAX_NAME:
        raise WeightsError(f"{what}: attribute {attr!r} holds {dtype}, not names")
    values = np.atleast_1d(obj.attrs[attr]).tolist()
    return [text(v, f"{what}: attribute {attr!r}") for v in values]


@contextlib.contextmanager
def memory_cap(extra):
    """Let the process map at most ``extra`` more bytes while the block runs (Linux; elsewhere no cap).

    A variable-length string is stored as (length, heap address); HDF5 allocates ``length``
    bytes before it looks at the address, so one lying length (2**32 - 1) costs 4 GiB and
    seconds before the read fails. With the address space capped, that allocation fails at
    once and HDF5 reports it as an error. The cap is the process's, so it is held only while
    a file's names are read, never while its values are.
    """
    try:
        import resource
        with open("/proc/self/status") as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        old = resource.getrlimit(resource.RLIMIT_AS)
        cap = min([size + extra] + [n for n in old if n != resource.RLIM_INFINITY])
        resource.setrlimit(resource.RLIMIT_AS, (cap, old[1]))
    except (ImportError, OSError, StopIteration, ValueError):
        yield                               # no /proc or no RLIMIT_AS: nothing to cap with
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)


def text(value, what):
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str) or len(value) > MAX_NAME:
        raise WeightsError(f"{what} is not a short string ({type(value).__name__})")
    return value


# ------------------------------------------------------------------ rules 3-5: one dataset
class Tensor:
    """A dataset not yet read: ``shape``, ``dtype``, then ``read(dtype)``.

    The first look at ``shape`` or ``dtype`` checks rule 3 (storage inside this file, a float
    dtype); nothing is read until :meth:`read`, which the caller calls only after comparing
    the shape with the model's (rule 4).
    """

    def __init__(self, dataset, what):
        h5py = h5py_module()
        if not isinstance(dataset, h5py.Dataset):
            raise WeightsError(f"{what}: expected a dataset, found a {type(dataset).__name__}")
        self.dataset, self.what, self._shape = dataset, what, None

    @property
    def shape(self):
        if self._shape is None:
            self._check()
        return self._shape

    @property
    def dtype(self):
        if self._shape is None:
            self._check()
        return self._dtype

    def _check(self):
        """Rule 3, on first use of ``shape`` or ``dtype`` (a file's unused layers cost nothing)."""
        h5py = h5py_module()
        dataset, what = self.dataset, self.what
        dcpl = dataset.id.get_create_plist()
        layout = dcpl.get_layout()
        if layout == h5py.h5d.VIRTUAL or dataset.is_virtual:
            raise WeightsError(f"{what} is a virtual dataset (its values come from other datasets or files); "
                               "a weights file must hold its own values")
        if dcpl.get_external_count():
            raise WeightsError(f"{what} keeps its values in an external file ({_external_name(dcpl)!r}); "
                               "a weights file must hold its own values")
        if layout not in (h5py.h5d.CONTIGUOUS, h5py.h5d.COMPACT, h5py.h5d.CHUNKED):
            raise WeightsError(f"{what}: unknown storage layout {layout}")
        self.chunked = layout == h5py.h5d.CHUNKED
        self.filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
        refused = [f for f in self.filters if f not in (FILTER_DEFLATE, FILTER_SHUFFLE, FILTER_LZF)]
        if refused:
            names = ", ".join(FILTER_NAMES.get(f, f"filter {f}") for f in refused)
            raise WeightsError(f"{what} is compressed with {names}; only deflate (gzip), shuffle and lzf are read")
        if dataset.shape is None:
            raise WeightsError(f"{what} is empty (a null dataspace); expected an array of numbers")
        shape = tuple(int(n) for n in dataset.shape)
        dtype = dataset.dtype
        htype = dataset.id.get_type()
        if (htype.get_class() != h5py.h5t.FLOAT or dtype.kind != "f" or dtype.itemsize not in FLOAT_SIZES
                or htype.get_size() != dtype.itemsize):
            raise WeightsError(f"{what} holds {dtype} values; expected floats of 2, 4 or 8 bytes")
        self._dtype, self._shape = np.dtype(dtype), shape

    def read(self, dtype):
        """The values as ``dtype`` (C order, native), cast where NumPy casts; checked finite by the caller."""
        self.shape                                  # noqa: B018 -- the checks, if not done yet
        if self.chunked:
            raw = _read_chunked(self.dataset, self.shape, self.dtype, self.filters, self.what)
        else:
            raw = np.empty(self.shape, self.dtype.newbyteorder("="))
            if raw.size:
                self.dataset.read_direct(raw)
        with np.errstate(over="ignore", invalid="ignore"):
            return raw.astype(dtype, copy=False)


def _external_name(dcpl):
    try:
        name = dcpl.get_external(0)[0]
        return (name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name))[:80]
    except Exception:       # noqa: BLE001 -- only for the message
        return "?"


def _read_chunked(dataset, shape, dtype, filters, what):
    """Assemble a chunked dataset from its raw chunks, decoding each here with bounded output (rule 5).

    Every chunk is ``prod(chunk shape) * itemsize`` bytes once decoded; a chunk whose stream
    would give more (or less) is refused. Chunks are stored whole even at the edges, so each
    is decoded in full and the part inside the dataset is copied out.
    """
    chunk = tuple(int(c) for c in dataset.chunks)
    chunk_bytes = int(np.prod(chunk, dtype=np.int64)) * dtype.itemsize
    total = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    grid = [-(-n // c) for n, c in zip(shape, chunk)]
    expected = int(np.prod(grid, dtype=np.int64)) if total else 0
    if chunk_bytes > total + (1 << 20) or expected > 16 + total // MIN_CHUNK_BYTES:
        raise WeightsError(f"{what}: {expected} chunks of shape {chunk} for an array of shape {shape}; refusing "
                           f"chunks much larger than the array, or more than 16 + one per {MIN_CHUNK_BYTES} bytes")
    dsid = dataset.id
    if dsid.get_num_chunks() != expected:
        raise WeightsError(f"{what}: {dsid.get_num_chunks()} chunks stored, {expected} expected for shape {shape}")
    out = np.empty(shape, dtype.newbyteorder("="))
    seen = set()
    for i in range(expected):
        info = dsid.get_chunk_info(i)
        offset = tuple(int(o) for o in info.chunk_offset)
        if (len(offset) != len(shape) or offset in seen
                or any(o % c or not 0 <= o < n for o, c, n in zip(offset, chunk, shape))):
            raise WeightsError(f"{what}: chunk {i} at offset {offset} does not fit shape {shape} in chunks of {chunk}")
        seen.add(offset)
        if info.size > chunk_bytes + chunk_bytes // 64 + 1024:     # deflate of random bytes grows a little
            raise WeightsError(f"{what}: chunk {i} stores {info.size} bytes for {chunk_bytes} decoded")
        mask, raw = dsid.read_direct_chunk(offset)
        for k in reversed(range(len(filters))):       # undo the filters, last applied first
            if not mask & (1 << k):
                raw = _unfilter(filters[k], raw, chunk_bytes, dtype.itemsize, f"{what}: chunk {i}")
        if len(raw) != chunk_bytes:
            raise WeightsError(f"{what}: chunk {i} holds {len(raw)} bytes, {chunk_bytes} expected")
        block = np.frombuffer(raw, dtype).reshape(chunk)
        region = tuple(slice(o, min(o + c, n)) for o, c, n in zip(offset, chunk, shape))
        out[region] = block[tuple(slice(0, r.stop - r.start) for r in region)]
    return out


def _unfilter(fid, raw, chunk_bytes, itemsize, what):
    if fid == FILTER_DEFLATE:
        d = zlib.decompressobj()
        try:
            out = d.decompress(raw, chunk_bytes)          # never more than one chunk's bytes
        except zlib.error as e:
            raise WeightsError(f"{what}: corrupt deflate stream ({e})") from None
        if d.unconsumed_tail or not d.eof:
            raise WeightsError(f"{what}: its deflate stream decodes to more than the chunk's {chunk_bytes} bytes "
                               "(or ends early); refusing a decompression bomb")
        return out
    if fid == FILTER_SHUFFLE:
        if len(raw) != chunk_bytes:
            raise WeightsError(f"{what}: shuffled data of {len(raw)} bytes, {chunk_bytes} expected")
        # shuffle stored byte 0 of every value, then byte 1 ...: (itemsize, n) back to (n, itemsize)
        return np.frombuffer(raw, np.uint8).reshape(itemsize, -1).T.tobytes()
    return lzf_decompress(raw, chunk_bytes, what)


def lzf_decompress(data, size, what="lzf data"):
    """LZF (liblzf, h5py's filter), decoded into exactly ``size`` bytes or refused.

    A control byte ``c`` < 32 says "copy the next c+1 bytes"; otherwise its top 3 bits are a
    length (7 means "add the next byte") and, with the next byte, a distance back into the
    output: copy that many + 2 bytes from there (byte by byte, as runs may overlap).
    """
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        i += 1
        if c < 32:
            run = data[i:i + c + 1]
            if len(run) != c + 1 or len(out) + len(run) > size:
                raise WeightsError(f"{what}: corrupt lzf stream (a literal run past the end)")
            out += run
            i += c + 1
            continue
        length = c >> 5
        if length == 7:
            if i >= n:
                raise WeightsError(f"{what}: corrupt lzf stream (truncated)")
            length += data[i]
            i += 1
        if i >= n:
            raise WeightsError(f"{what}: corrupt lzf stream (truncated)")
        back = ((c & 0x1F) << 8) + data[i] + 1
        i += 1
        length += 2
        if back > len(out) or len(out) + length > size:
            raise WeightsError(f"{what}: corrupt lzf stream (a copy outside the output)")
        run = out[len(out) - back:]                    # the copy may overlap what it writes:
        out += (run * (length // back + 1))[:length]    # a back-distance shorter than the length repeats
    if len(out) != size:
        raise WeightsError(f"{what}: lzf stream gives {len(out)} bytes, {size} expected")
    return bytes(out)
