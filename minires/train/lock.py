"""One writer per run folder: ``run.lock``, made with O_EXCL, names the process that writes there.

    with RunLock("runs/a"):        # refused if another run writes runs/a; released however the block ends
        ...train, save...

Two runs given the same ``--out`` would both write config.json, the checkpoints and
metrics.csv, and leave a folder whose files come from different runs. So a run first creates
``run.lock`` in its folder with ``O_CREAT | O_EXCL``: the operating system creates the file for
exactly one of two processes that try at once (on a local disk, and on NFS v3 and later). The
file says who holds it -- process id, host, when -- and is removed when the run ends: normally,
by an error, or by a second Ctrl-C.

A process killed outright (kill -9, power loss, MPI_Abort) cannot remove its lock. The next run
reads it: a process id that no longer runs on this host is a stale lock, said so and taken over;
a lock from another host cannot be checked from here, and is refused with the host named (the
folder is on a disk both see). Under mpiexec rank 0, the one writer, holds the lock.
"""
import json
import os
import socket
import time

LOCK_NAME = "run.lock"


def process_running(pid):
    """Whether process ``pid`` runs on this machine (True where that cannot be known)."""
    if os.name == "nt":             # os.kill(pid, 0) would end the process on Windows
        return True
    try:
        os.kill(pid, 0)             # signal 0: nothing is sent, only whether the process exists is checked
    except ProcessLookupError:
        return False
    except OSError:                 # PermissionError: it runs, as another user
        return True
    return True


class RunLockError(RuntimeError):
    """The run folder is another run's (its lock is held), or its lock cannot be read."""


class RunLock:
    """``run.lock`` in ``folder`` for the duration of a ``with`` block (the folder is created)."""

    def __init__(self, folder):
        self.folder, self.path = folder, os.path.join(folder, LOCK_NAME)
        self.mine = None            # what we wrote into the lock: removed only if it still says so

    def __enter__(self):
        self.made_folder = not os.path.isdir(self.folder)
        os.makedirs(self.folder, exist_ok=True)
        for _ in range(3):          # a stale lock is removed and the creation tried again
            if self._create():
                return self
            self._judge(*self._read())
        raise RunLockError(f"{self.path}: could not take the run folder's lock after removing a stale one "
                           "three times (another run is starting there at the same moment?)")

    def __exit__(self, *exc):
        if self.mine is not None and self._read_text() == self.mine:
            os.remove(self.path)
        if self.made_folder and not os.listdir(self.folder):    # a run that failed before writing anything
            os.rmdir(self.folder)
        self.mine = None
        return False

    def _create(self):
        """True if this process made the lock file; False if one exists."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.mine = json.dumps(holder) + "\n"
        try:
            with os.fdopen(fd, "w") as f:
                f.write(self.mine)
        except OSError as e:        # a full disk: no half-written lock left behind
            os.remove(self.path)
            self.mine = None
            raise OSError(e.errno, f"{e.strerror}: cannot write {self.path}") from e
        return True

    def _read_text(self):
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                return f.read(4096)
        except FileNotFoundError:
            return None

    def _read(self):
        """(the holder the lock names, a dict; the lock's text), with a moment's grace for a lock
        that is being written; (None, None) if it is gone."""
        for _ in range(20):
            text = self._read_text()
            if text is None:
                return None, None   # released meanwhile: try again
            try:
                holder = json.loads(text)
            except ValueError:
                holder = None
            if isinstance(holder, dict) and type(holder.get("pid")) is int and 0 < holder["pid"] < 2 ** 31 \
                    and isinstance(holder.get("host"), str):
                return holder, text
            time.sleep(0.05)
        raise RunLockError(f"{self.path} exists but does not say which run holds it ({text!r:.60}); "
                           "if no run writes to this folder, delete it")

    def _judge(self, holder, text):
        """Refuse a lock that a running process (or one on another host) holds; remove a stale one
        (unless it changed meanwhile: another run that found it stale took it over first)."""
        if holder is None:
            return
        who = f"process {holder['pid']} on host {holder['host']!r:.80}, since {holder.get('since')!r:.40}"
        if holder["host"] != socket.gethostname():
            raise RunLockError(f"{self.folder} is locked by {who}, another host, where minires cannot see whether "
                               f"it still runs; if it does not, delete {self.path}")
        if process_running(holder["pid"]):
            raise RunLockError(f"{self.folder} is in use by another run ({who}): two runs in one folder would mix "
                               f"their files; wait for it to end, or choose another --out (if process "
                               f"{holder['pid']} is not a minires run, delete {self.path})")
        print(f"note: {self.path} was left by {who}, which no longer runs (killed?); taking the folder over",
              flush=True)
        if self._read_text() == text:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
