"""Read an ``.npz`` from a stranger: every member checked before a byte is decompressed.

An ``.npz`` is a zip archive with one ``<name>.npy`` member per array; each ``.npy`` is a
short header (``{'descr': '<f4', 'fortran_order': False, 'shape': (64, 3, 7, 7)}``) and
then the raw elements. ``np.load`` trusts all of it: a 306 KB deflate bomb inflates to
300 MB, and a big-endian, Fortran-order, unicode, structured or datetime array comes back
as it is. Here, before anything is inflated:

* from the zip directory: only ``.npy`` members, stored or deflated, each name once; a
  stored member holds as many bytes as it claims; all members together declare at most
  ``MAX_RATIO`` x the file's size + 16 MiB (so a bomb is refused by its declared sizes, and
  a member that lies about its size fails the read, which stops at the declared size);
* from each ``.npy`` header (NumPy's parser, header at most 10,000 bytes): a numeric dtype
  (bool, int, uint, float, complex -- no strings, objects, records, dates), at most 64
  dimensions of ints in [0, 2**63), and exactly as many data bytes as the shape needs.

Every array comes back as a native-endian, C-ordered, writeable copy.
"""
import os
import zipfile

import numpy as np

from .common import WeightsError, OutputBudget, check_shape, open_regular_file

MAX_RATIO = 100                # declared bytes <= 100 x file size + 16 MiB (savez_compressed of zeros ~ 1000x)
MAX_HEADER_BYTES = 10_000      # NumPy's own limit for an .npy header
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


def not_a_checkpoint(path, why):
    return WeightsError(f"{os.fspath(path)}: not a minires checkpoint (an .npz: a zip archive of .npy "
                        f"arrays): {why}")


def _check_directory(path, zf, file_size):
    infos = zf.infolist()
    budget = OutputBudget(file_size, expansion=MAX_RATIO)
    seen = set()
    for info in infos:
        if not info.filename.endswith(".npy") or info.is_dir():
            raise not_a_checkpoint(path, f"member {info.filename!r} is not an .npy array")
        if info.filename in seen:
            raise WeightsError(f"the archive holds {info.filename!r} twice")
        seen.add(info.filename)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise WeightsError(f"{info.filename}: compression method {info.compress_type}; an .npz is "
                               "stored or deflated")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise WeightsError(f"{info.filename} is stored uncompressed but claims {info.file_size} bytes "
                               f"in {info.compress_size}; corrupt archive")
        budget.charge(info.file_size, f"{info.filename} (declares {info.file_size} bytes from "
                                      f"{info.compress_size} compressed)")
    return infos


def _read_member(zf, info):
    """One member -> a native-endian C-ordered array, header and size checked before the data."""
    with zf.open(info) as m:
        version = np.lib.format.read_magic(m)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(m, max_header_size=MAX_HEADER_BYTES)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(m, max_header_size=MAX_HEADER_BYTES)
        else:
            raise WeightsError(f"{info.filename}: .npy format version {version}; expected 1.0 or 2.0")
        if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
            raise WeightsError(f"{info.filename}: dtype {dtype.str!r} is not a number type (expected bool, "
                               "int, uint, float or complex; strings, objects, records and dates are refused)")
        shape, count = check_shape(shape, dtype.itemsize, info.filename)
        nbytes = count * dtype.itemsize
        left = info.file_size - m.tell()
        if nbytes != left:
            raise WeightsError(f"{info.filename}: its header says shape {list(shape)} of {dtype.str} "
                               f"({nbytes} bytes) but {left} bytes of data follow")
        raw = m.read(nbytes)
        if len(raw) != nbytes:
            raise WeightsError(f"{info.filename}: truncated ({len(raw)} of {nbytes} bytes)")
    a = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return np.array(a, dtype=dtype.newbyteorder("="), order="C", copy=True)


def read_npz_arrays(path):
    """name -> array for every member of the ``.npz`` at ``path``, with the checks above.

    A file that is not a zip archive (a text file, say) is refused as "not a minires
    checkpoint", saying why -- never with NumPy's advice to allow pickles.
    """
    with open_regular_file(path) as f:
        file_size = os.fstat(f.fileno()).st_size
        head = f.read(4)
        if head not in ZIP_MAGICS:
            what = "it is empty" if not head else f"it starts with {head!r}, not a zip signature 'PK\\x03\\x04'"
            if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
                what += " (it looks like text)"
            raise not_a_checkpoint(path, what)
        try:
            with zipfile.ZipFile(f) as zf:
                arrays = {}
                for info in _check_directory(path, zf, file_size):
                    arrays[info.filename[:-len(".npy")]] = _read_member(zf, info)
        except WeightsError:
            raise
        except Exception as e:      # BadZipFile, CRC mismatch, zlib.error, EOFError, a bad .npy header ...
            raise WeightsError(f"{os.fspath(path)}: corrupt or truncated .npz ({type(e).__name__}: {e})") from e
    return arrays

