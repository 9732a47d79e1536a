"""Downloading and unpacking data sets, safely.

Three promises, because a half-written 170 MB archive that *looks* complete is the
worst kind of bug (it fails an hour later, far from its cause):

1. **Atomic writes.** Bytes go to a temporary file in the target folder; only when the
   download is complete *and* its MD5 matches the published one is it renamed into place
   with ``os.replace`` (a single step on every OS). An interrupted or corrupt download
   leaves nothing behind that looks valid.
2. **Checksums.** Every data set we fetch has a published MD5; a mismatch is a
   :class:`ChecksumError` naming the file, the expected and the actual digest.
3. **Safe extraction.** A tar archive may contain names like ``../../.bashrc`` or links
   pointing outside the target folder; :func:`extract_tar` refuses them.
"""
import errno
import hashlib
import os
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

from ..files import check_folder, open_regular_file

try:  # a nicer progress bar when tqdm is installed; a plain one otherwise
    from tqdm import tqdm as _tqdm
except ImportError:  # pragma: no cover - depends on the environment
    _tqdm = None

CHUNK = 1 << 16  # read 64 KiB at a time
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}  # no space left, quota exceeded


class DataError(RuntimeError):
    """A data file is missing, truncated, corrupt or not in the expected format."""


class ChecksumError(DataError):
    """A file's MD5 digest is not the published one."""


class DataNotice(UserWarning):
    """Worth knowing, not an error: e.g. a data set folder that is not the published data set."""


def default_root():
    """The folder where data sets are kept: ``$MINIRES_DATA`` if set, else ``~/.cache/minires``."""
    root = os.environ.get("MINIRES_DATA") or os.path.join("~", ".cache", "minires")
    return os.path.abspath(os.path.expanduser(root))


def resolve_root(root):
    """``root`` as an absolute path, or :func:`default_root` when ``root`` is None; a DataError if it
    (or a folder above it) is a file, not a folder (it need not exist yet)."""
    root = default_root() if root is None else os.path.expanduser(os.fspath(root))
    check_folder(root, DataError, "folder of data sets")
    return os.path.abspath(root)


def open_data_file(path):
    """Open ``path`` for reading in binary mode, if it is a regular file: a FIFO (which would make
    ``open`` wait for a writer forever), a device (``/dev/zero`` never ends) or a directory is a
    DataError, ``x: expected a regular file, got a FIFO (named pipe)``; a missing file a
    FileNotFoundError. The rules: :func:`minires.files.open_regular_file`."""
    return open_regular_file(path, DataError, "data file", wording="{path}: expected a regular file, got {kind}")


def read_data_file(path):
    """The whole content of the regular file ``path`` (see :func:`open_data_file`)."""
    with open_data_file(path) as f:
        return f.read()


def md5sum(path):
    """The hexadecimal MD5 digest of a file, read in chunks (the file may be large)."""
    digest = hashlib.md5()
    with open_data_file(path) as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(path, md5):
    """Raise :class:`ChecksumError` unless the file at ``path`` has MD5 ``md5`` (None: no check)."""
    if md5 is None:
        return
    got = md5sum(path)
    if got != md5.lower():
        raise ChecksumError(f"checksum mismatch for {path}: expected MD5 {md5.lower()}, got {got} "
                            "(the file is corrupt or not the published one; delete it and download again)")


class _PlainProgress:
    """A progress line on stderr for when tqdm is not installed: 'name:  42% (71.6/170.5 MB)'."""

    def __init__(self, total, desc):
        self.total, self.desc, self.done, self.last = total, desc, 0, 0.0

    def update(self, n):
        self.done += n
        now = time.monotonic()
        if now - self.last >= 0.5 or (self.total and self.done >= self.total):
            self.last = now
            mb = self.done / 1e6
            if self.total:
                line = f"{self.desc}: {100 * self.done / self.total:3.0f}% ({mb:.1f}/{self.total / 1e6:.1f} MB)"
            else:
                line = f"{self.desc}: {mb:.1f} MB"
            print("\r" + line, end="", file=sys.stderr, flush=True)

    def close(self):
        print(file=sys.stderr, flush=True)


def _progress_bar(total, desc, enabled):
    if not enabled:
        return None
    if _tqdm is not None:
        return _tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=None)  # off when not a terminal
    return _PlainProgress(total, desc)


def download_url(url, path, md5=None, progress=True, timeout=60):
    """Download ``url`` to the file ``path``, atomically, checking its MD5.

    On success ``path`` holds the complete, verified file. On any failure (network error,
    fewer bytes than the server announced, wrong MD5) the temporary file is removed,
    ``path`` is left untouched, and the error says what went wrong.
    """
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    # The temporary file lives in the same folder, so os.replace is a rename, not a copy;
    # its leading dot and '.part' suffix say clearly that it is not a finished file.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".part")
    bar = None
    try:
        digest = hashlib.md5()
        received = 0
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, OSError) as e:
                raise DataError(f"could not download {url}: {e}") from e
            with response:
                length = response.headers.get("Content-Length")
                expected = int(length) if length is not None else None
                bar = _progress_bar(expected, os.path.basename(path), progress)
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except (OSError, ValueError) as e:  # connection reset, http.client.IncompleteRead ...
                        raise DataError(f"download of {url} broke off after {received} bytes: {e}") from e
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if expected is not None and received != expected:
            raise DataError(f"download of {url} is truncated: the server announced {expected} bytes, "
                            f"{received} arrived")
        got = digest.hexdigest()
        if md5 is not None and got != md5.lower():
            raise ChecksumError(f"checksum mismatch for {url} (to be saved as {path}): expected MD5 "
                                f"{md5.lower()}, got {got}; the file was not kept")
        os.replace(tmp, path)
    except BaseException:  # also KeyboardInterrupt: never leave a half-written file
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    finally:
        if bar is not None:
            bar.close()
    return path


def download_from_mirrors(mirrors, filename, path, md5=None, progress=True):
    """Try ``mirror + filename`` for each mirror in turn until one gives a verified file.

    Raises :class:`DataError` listing every mirror's failure if none works.
    """
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            return download_url(url, path, md5=md5, progress=progress)
        except DataError as e:
            failures.append(f"  {url}: {e}")
    raise DataError(f"could not download {filename} from any mirror:\n" + "\n".join(failures))


def _is_within(folder, target):
    folder = os.path.realpath(folder)
    return os.path.commonpath([folder, os.path.realpath(target)]) == folder


def extract_tar(archive, dest):
    """Extract the tar (optionally gzip'd) ``archive`` into the folder ``dest``; return ``dest``.

    Only regular files and folders whose paths stay inside ``dest`` are accepted: an absolute
    name, a '..' that climbs out, a link or a device file is an error naming the entry.
    """
    os.makedirs(dest, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                if not (m.isfile() or m.isdir()):
                    raise DataError(f"unsafe entry {m.name!r} in {archive}: expected only files and "
                                    "folders, found a link or special file")
                if os.path.isabs(m.name) or not _is_within(dest, os.path.join(dest, m.name)):
                    raise DataError(f"unsafe entry {m.name!r} in {archive}: its path leads outside "
                                    f"the folder {dest}")
            # Python's own 'data' filter (3.11.4+) repeats these checks and drops odd permissions.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - older Pythons
                tar.extractall(dest, members=members)
    except OSError as e:
        if e.errno in _DISK_FULL:
            raise DataError(f"could not extract {archive} into {dest}: the disk is full ({e.strerror}); "
                            "free some space and try again") from e
        if e.errno is not None:     # a write that failed: permissions, read-only file system ...
            raise DataError(f"could not extract {archive} into {dest}: {e.strerror} ({e.filename or dest})") from e
        raise _corrupt(archive, e) from e
    except (tarfile.TarError, EOFError) as e:
        raise _corrupt(archive, e) from e
    return dest


def _corrupt(archive, e):
    return DataError(f"could not extract {archive}: expected a complete tar.gz archive, "
                     f"got an error while reading it ({type(e).__name__}: {e}); "
                     "the archive is probably corrupt or truncated")
