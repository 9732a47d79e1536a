"""Paths from strangers, checked one way: a file that is missing, or that is a directory, a FIFO or
a device, is one line naming the path, what was expected and what came -- never Python's
``[Errno 21] Is a directory``. The ground floor: the standard library only.

    no image at cat.jpg                                   (FileNotFoundError)
    runs/x: a folder, not a checkpoint; did you mean runs/x/best.npz?
    /dev/zero: a device, not a weights file
    out.png: a file, not a folder

The readers of weights (``minires.weights``), data sets (``minires.data``) and images open
their files with :func:`open_regular_file`, each passing its own error class and words; the
command line checks the paths it is given with :func:`check_regular_file` and :func:`check_folder`
before any work, with the same words.
"""
import os
import stat

WRONG_KIND = "{path}: {kind}, not {what}"   # the house's wording; {what} gets its article


def kind_of(mode):
    """What a file of ``st_mode`` is, in words: 'a file', 'a folder', 'a FIFO (named pipe)' ..."""
    return ("a file" if stat.S_ISREG(mode) else "a folder" if stat.S_ISDIR(mode) else
            "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a special file")


def with_article(what):
    """'image' -> 'an image', 'weights file' -> 'a weights file'."""
    return ("an " if what[:1].lower() in "aeiou" else "a ") + what


def missing(path, what):
    """The FileNotFoundError for a path that is not there: ``no {what} at {path}``, and, when a
    folder on the way is a file (``cat.jpg/x.png``), which one."""
    name = os.fsdecode(path)
    above = os.path.dirname(name)
    while above and not os.path.lexists(above):
        above = os.path.dirname(above)
    blocked = ""
    if above and os.path.exists(above) and not os.path.isdir(above):
        blocked = f" ({above} is {kind_of(os.stat(above).st_mode)}, not a folder)"
    return FileNotFoundError(f"no {what} at {name}{blocked}")


def did_you_mean(folder, names):
    """``'; did you mean F/a or F/b?'`` for those of ``names`` that are files in ``folder``; '' if none."""
    found = [os.path.join(os.fsdecode(folder), n) for n in names if os.path.isfile(os.path.join(folder, n))]
    return f"; did you mean {' or '.join(found)}?" if found else ""


def check_regular_file(path, error, what, suggest=(), note=""):
    """Refuse ``path`` unless it names a regular file (links followed), before any work:
    FileNotFoundError ``no {what} at {path}``, else ``error`` ``{path}: a folder, not {a what}``.
    For a folder, ``note`` is added, and :func:`did_you_mean` of the ``suggest`` names in it."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise missing(path, what) from None
    if not stat.S_ISREG(mode):
        more = note + did_you_mean(path, suggest) if stat.S_ISDIR(mode) else ""
        raise error(WRONG_KIND.format(path=os.fsdecode(path), kind=kind_of(mode), what=with_article(what)) + more)


def open_regular_file(path, error, what, wording=WRONG_KIND):
    """Open ``path`` for reading in binary mode, if it is a regular file; else ``error`` in ``wording``
    (``{path}``, ``{kind}``: :func:`kind_of`, ``{what}``: ``what`` with its article), or a
    FileNotFoundError ``no {what} at {path}``.

    ``O_NONBLOCK``: opening a FIFO for reading otherwise waits for a writer forever (and a device
    such as /dev/zero never ends). The check is ``fstat`` on the descriptor opened, so the file
    cannot be swapped for another between the check and the read.
    """
    name = os.fsdecode(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise missing(path, what) from None
    except IsADirectoryError:       # Windows; POSIX opens a directory and fstat says what it is
        raise error(wording.format(path=name, kind="a folder", what=with_article(what))) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(wording.format(path=name, kind=kind_of(mode), what=with_article(what)))
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def check_folder(path, error, what="folder"):
    """Refuse ``path`` as a folder to write in when it, or a folder above it, exists as something
    else: ``error`` ``{path}: a file, not a folder``. A folder that does not exist yet is fine."""
    name = os.fsdecode(path)
    probe = name
    while probe and not os.path.isdir(probe):
        if os.path.lexists(probe):
            kind = kind_of(os.stat(probe).st_mode) if os.path.exists(probe) else "a broken link"
            if probe == name:
                raise error(WRONG_KIND.format(path=name, kind=kind, what=with_article(what)))
            raise error(f"{name}: cannot be {with_article(what)}, {probe} is {kind}")
        probe = os.path.dirname(probe)
