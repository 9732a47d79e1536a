"""Load and save model weights with NumPy alone, safely.

One entry point for reading, whatever wrote the file::

    from minires.weights import load_weights, save_weights
    sd = load_weights("resnet18-f37072fd.pth")    # torchvision's published weights
    model.load_state_dict(sd)
    save_weights("resnet18.safetensors", model.state_dict())

The format is chosen by the file's *content*, not its name:

* zip (``PK``) holding ``<prefix>/data.pkl``: ``torch.save``, torch >= 1.6   (:mod:`.pth`)
* zip holding only ``.npy`` files: NumPy ``.npz`` / minires checkpoint       (:mod:`.checkpoint`)
* a pickle (first byte 0x80): legacy ``torch.save``, torch < 1.6             (:mod:`.pth`)
* 8 bytes, then ``{``: safetensors                                          (:mod:`.safetensors`)

A torch file is a pickle, which can name and call any Python function; ours is read with
an allow-list (see :mod:`.unpickler`) so a malicious file raises :class:`WeightsError`
instead of running code. Every structural lie a file can tell (truncation, a storage
shorter than its tensor, safetensors offsets that overlap or point outside the data)
is a :class:`WeightsError` too, never a wrong array.

And every read is bounded, so a crafted file cannot crash, hang or exhaust the machine
either: the pickle's opcodes are scanned before unpickling (:mod:`.pickle_scan`), every
size is an int in [0, 2**63) checked before any arithmetic (:mod:`.common`), the bytes a
file may produce are a stated multiple of its size, safetensors files are read by their
own library, and npz members are checked before they are decompressed (:mod:`.npz`).
``tools/make_hostile_corpus.py`` writes the files the tests attack the readers with.
"""
import os
import zipfile

from .checkpoint import load_checkpoint, read_npz, save_checkpoint
from .common import WeightsError, atomic_write, open_regular_file
from .pth import extract_state_dict, read_torch_legacy, read_torch_zip
from .safetensors import read_safetensors, write_safetensors

__all__ = ["load_weights", "save_weights", "load_torch", "detect_format", "WeightsError",
           "save_checkpoint", "load_checkpoint", "read_safetensors", "write_safetensors",
           "atomic_write"]

_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")   # a local file header / an empty archive


def detect_format(path):
    """'torch-zip', 'torch-legacy', 'safetensors' or 'npz', from the file's first bytes.

    The path must name a regular file: a FIFO, a device or a directory is refused before
    anything is read from it (:func:`~.common.open_regular_file`).
    """
    with open_regular_file(path) as f:
        head = f.read(512)
        if head[:4] in _ZIP_MAGICS:
            try:
                with zipfile.ZipFile(f) as zf:
                    names = zf.namelist()
            except (zipfile.BadZipFile, EOFError, ValueError) as e:
                raise WeightsError(f"{os.fspath(path)}: truncated or corrupt zip archive ({e})") from e
            if any(n.endswith("/data.pkl") for n in names):
                return "torch-zip"
            if names and all(n.endswith(".npy") for n in names):
                return "npz"
            raise WeightsError(f"{os.fspath(path)}: a zip archive holding neither '<prefix>/data.pkl' "
                               f"(torch.save) nor only .npy files (npz); entries: {names[:5]}")
    if head[:1] == b"\x80":
        return "torch-legacy"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[257:262] == b"ustar":
        raise WeightsError(f"{os.fspath(path)}: a tar archive -- torch < 0.1.10's format, not supported; "
                           "re-save it with a recent PyTorch")
    what = "an empty file" if not head else f"first bytes {head[:12]!r}"
    raise WeightsError(f"{os.fspath(path)}: unrecognised weights format ({what}); expected a torch.save "
                       "file (.pth/.pt), a .safetensors file or an .npz")


def load_torch(path):
    """Everything a ``torch.save`` file holds, tensors as NumPy arrays (dicts as OrderedDicts).

    Use it for training checkpoints with more than weights (epoch, optimizer state);
    :func:`load_weights` returns just the state_dict.
    """
    fmt = detect_format(path)
    if fmt not in ("torch-zip", "torch-legacy"):
        raise WeightsError(f"{os.fspath(path)}: not a torch.save file (it is {fmt})")
    return _guarded(path, _read_torch, path, fmt)


def _read_torch(path, fmt):
    if fmt == "torch-zip":
        return read_torch_zip(path)
    with open(path, "rb") as f:
        return read_torch_legacy(f.read())


def _guarded(path, fn, *args):
    """Run a reader; any failure other than a missing file becomes a WeightsError naming the file."""
    try:
        return fn(*args)
    except WeightsError as e:
        if str(e).startswith(f"{os.fspath(path)}: "):      # already names the file
            raise
        raise WeightsError(f"{os.fspath(path)}: {e}") from e
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as e:      # BadZipFile, CRC errors, EOFError, MemoryError ... from a corrupt file
        raise WeightsError(f"{os.fspath(path)}: corrupt or truncated file ({type(e).__name__}: {e})") from e


def load_weights(path, *, strip_module_prefix=True):
    """Read a state_dict from ``path`` -> ordered dict ``name -> numpy.ndarray``.

    Formats: torch.save (zip or legacy), safetensors, npz (see the module docstring).
    A torch training checkpoint ``{'state_dict': ..., 'epoch': ...}`` (or ``'model'``,
    ``'model_state_dict'``) is unwrapped. With ``strip_module_prefix`` (default), keys that
    all start with ``'module.'`` (saved from ``nn.DataParallel``) lose it. bfloat16 tensors
    are widened exactly to float32; every array is a native-endian, C-contiguous copy.
    """
    fmt = detect_format(path)
    if fmt in ("torch-zip", "torch-legacy"):
        obj = _guarded(path, _read_torch, path, fmt)
        return _guarded(path, extract_state_dict, obj, strip_module_prefix)
    if fmt == "safetensors":
        arrays = _guarded(path, read_safetensors, path)[0]
    else:
        arrays = _guarded(path, read_npz, path)[0]
    return extract_state_dict(arrays, strip_module_prefix) if arrays else arrays


def save_weights(path, state_dict, metadata=None):
    """Write ``state_dict`` (name -> array) to ``path``, atomically; format by extension.

    ``.safetensors``: safetensors (``metadata`` must map str -> str).
    ``.npz``: a minires checkpoint (``metadata`` any JSON-serialisable dict).
    Writing torch pickles is deliberately not supported.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext == ".safetensors":
        write_safetensors(path, state_dict, metadata)
    elif ext == ".npz":
        save_checkpoint(path, state_dict, metadata)
    else:
        raise ValueError(f"save_weights chooses the format by extension: '.safetensors' or '.npz', "
                         f"got {ext or 'no extension'!r} in {os.fspath(path)!r}")
