"""ThreadParallel: every core at work, by data parallelism inside one process.

Why. NumPy runs its copies and element-wise passes (im2col, batch norm, ReLU, the residual
sums) on one core; only its matrix multiplies use more, through OpenBLAS's own threads. On a
2-core machine one core idled through about half of a ResNet-20 training step. Splitting
each layer's work between two threads did not help (measured: im2col and the element-wise
passes are limited by the memory bus, which one core already fills, and two threads doing
the same kind of work at the same time only queue for it). What did: two threads, each
running the *whole network* on half of the batch. One is in a matrix multiply (arithmetic)
while the other copies (memory), and each matrix multiply runs on one core at full speed.

How. ``ThreadParallel(model)`` keeps one *replica* of the model per thread; replica 0 is
the model itself, the others are copies that share its parameter and buffer arrays (never
copies of the weights) but have their own gradients and their own saved activations. A
forward cuts the batch into equal parts, one per replica, runs them at once and stacks the
outputs; a backward does the same with the gradient, then adds every replica's parameter
gradients into the model's, in replica order. Python's GIL does not serialise the threads:
NumPy lets go of it inside every large copy, ufunc and matrix multiply.

Batch norm is the one layer that mixes the images of a batch, so the replicas' batch norms
talk to each other: while the replicas run, each of their batch norms holds a ``ReplicaPart``
as its ``group`` (the protocol of minires/nn/norm.py). Each computes its part's per-channel
statistics, gathers every part's through the ``ReplicaGroup``, and combines them into those
of the whole batch (``nn/norm.py:combine_moments``): every replica normalises with the same
numbers -- the same numbers as the model alone computes (the tests check it in float64).
The same protocol as data parallelism across processes (minires/parallel/syncbn.py), with
threads and a barrier instead of MPI.

While the replicas run, OpenBLAS is set to one thread per call (``blas_threads``, in
minires/parallel/blas.py): two layers of threads on two cores fight (measured: 1.7x slower).
It gets its setting back after. The setting is the process's: matrix multiplies of other
threads of yours, during a step, run on one thread too.

Safe to misuse. Each ThreadParallel has worker threads of its own (made on its first split,
gone with it), so two objects stepped from two threads never wait for each other's workers:
a pool shared by every object deadlocked there (each call held some workers, waiting in a
barrier for a replica queued behind the other call's). A model runs one call at a time: a
forward or backward while another runs on the same model, from another thread (or from a
layer inside it), is refused with a RuntimeError; give each thread its own model. No barrier
waits forever: a replica that waits ``BARRIER_TIMEOUT`` seconds for another raises a
TimeoutError naming the replicas that never came. A forward and its backward belong together:
make both on one thread, in turn (nothing here can see another thread's forward in between).

The plain path (``with minires.nn.plain():``), CuPy arrays, one thread
(``MINIRES_NUM_THREADS=1`` or ``threads=1``), a batch too small to be worth it
(``MIN_PART_VALUES``), a NumPy whose BLAS this module
cannot find, and models with a layer that draws random numbers (Dropout: the replicas would
draw in a different order), whose batch norms already combine over processes (SyncBatchNorm)
or with a hook on any module (nn/hooks.py: each hook then sees the whole batch, once) all run
the model alone, as it is: ThreadParallel is then a pass-through.
"""
import contextlib
import copy
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..backend import xp_of
from ..nn import BatchNorm2d, Dropout
from ..nn.hooks import has_hooks
from ..nn.switches import is_plain
from .blas import blas_controllable, blas_threads

_local = threading.local()      # .group, .rank: the ReplicaGroup this thread's replica belongs to
_running = {}                   # id(model) -> the name of the thread running a call of it (ThreadParallel._one_call)
_running_lock = threading.Lock()

# A part smaller than this many input values is not worth a thread. Each layer call costs
# the threads some Python, a hand-over of the GIL and, in batch norm, a wait for the other
# replicas; on small arrays that is more than the work. Measured on 2 cores (ResNet-20,
# 32x32 images, training steps of ThreadParallel(model, min_part_values=1) alternating with
# the model alone's): batch 128, two parts of 196,608 values, 1.1-1.2x faster; batch 64
# (98,304 each) 0.97x; batch 32 0.73x.
MIN_PART_VALUES = 150_000

# Seconds a replica waits at a batch norm for the others before it gives up (TimeoutError).
# A replica waits there for the slowest one's work since the last batch norm: measured on 2
# cores, training ResNet-50 on 224x224 images, parts of 8 images, at most 0.17 s (0.63 s with
# two other busy processes on the cores); the wait grows with the part, so parts of 256 such
# images on that loaded machine would wait about 20 s. 300 s is 15 times that: no false
# alarm, and a replica that never comes is still reported within minutes.
BARRIER_TIMEOUT = 300.0


# ----- how many threads -----

def environment_threads():
    """``MINIRES_NUM_THREADS`` checked: a positive integer written in ASCII digits, or None when
    it is unset or empty. Anything else raises a ValueError naming the variable: a program can
    call this to check it before it writes anything."""
    raw = os.environ.get("MINIRES_NUM_THREADS", "")
    value = raw.strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ValueError(f"MINIRES_NUM_THREADS must be a positive integer in ASCII digits (or unset), got {raw!r}")
    return int(value)


def default_threads():
    """``MINIRES_NUM_THREADS`` if set (checked: ``environment_threads``), else the number of
    cores this process may run on."""
    env = environment_threads()
    if env is not None:
        return env
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                      # macOS, Windows
        return os.cpu_count() or 1


# ----- the replicas' batch norms talk through a group -----

class ReplicaGroup:
    """The replicas of one forward (or backward) call: ``size`` threads and a barrier.

    ``gather(value)``: every replica hands in its value and gets back the list of all of
    them, in replica order. Every replica then combines the list the same way, so all get
    the same result, bit for bit, whichever thread finished first. If one replica fails,
    ``abort()`` releases the others from the barrier (they raise BrokenBarrierError); one
    that waits ``timeout`` seconds (``BARRIER_TIMEOUT``) raises TimeoutError: never a hang.
    """

    def __init__(self, size, timeout=None):
        self.size = size
        self.timeout = BARRIER_TIMEOUT if timeout is None else timeout
        self._slots = [[None] * size, [None] * size]    # two sets, used in turn (see gather)
        self._count = [0] * size                        # gathers done by each replica
        self._barrier = threading.Barrier(size, timeout=self.timeout)
        self._aborted = False

    def gather(self, rank, value):
        # One barrier per gather, not two: gather k uses slot set k % 2. A replica can write
        # set k % 2 again only at gather k + 2, after the barrier of gather k + 1, which every
        # replica reaches only after it has read set k % 2 at gather k.
        slots = self._slots[self._count[rank] % 2]
        self._count[rank] += 1
        slots[rank] = value
        try:
            self._barrier.wait()    # everyone's value is in
        except threading.BrokenBarrierError:
            if self._aborted:       # another replica failed: ThreadParallel raises its error
                raise
            late = [r for r in range(self.size) if self._count[r] < self._count[rank]]
            who = f"replica(s) {late}" if late else "the others"
            raise TimeoutError(f"ThreadParallel: replica {rank} of {self.size} waited {self.timeout:g} s at a batch "
                               f"norm for {who}, which never came (only slow? ThreadParallel(timeout=...))") from None
        return list(slots)

    def abort(self):
        self._aborted = True
        self._barrier.abort()


class ReplicaPart:
    """One replica's view of its ReplicaGroup: the protocol of minires/nn/norm.py (``BatchNorm2d.group``).

    ``gather(value)`` hands this replica's value in and returns every replica's. The running
    statistics are shared arrays (the replicas hold the model's own buffers): replica 0 alone
    updates them.
    """

    def __init__(self, group, rank):
        self.group, self.rank, self.updates_running = group, rank, rank == 0

    def gather(self, value):
        return self.group.gather(self.rank, value)

    def __repr__(self):
        return f"replica {self.rank} of {self.group.size} (threads)"


def replica_group():
    """(group, rank) of the replica this thread runs, or (None, 0) outside ThreadParallel."""
    return getattr(_local, "group", None), getattr(_local, "rank", 0)


def _first_error(errors):
    """The error to raise from a call's replicas: a real one before a timeout, a timeout before
    a barrier broken by either (first in replica order among equals)."""
    failed = [e for e in errors if e is not None]
    return min(failed, key=lambda e: (isinstance(e, threading.BrokenBarrierError), isinstance(e, TimeoutError)))


# ----- the wrapper -----

class ThreadParallel:
    """Run ``model`` on ``threads`` threads (default ``default_threads()``, read once, here): the
    batch split into equal parts, one replica of the model per part (see the module docstring).
    Parts have at least ``min_part_values`` input values (``MIN_PART_VALUES``): a smaller batch
    is split into fewer parts, or runs on the model alone. A replica waits at most ``timeout``
    seconds for the others (default ``BARRIER_TIMEOUT``).

        net = ThreadParallel(model)
        logits = net(x)                        # = model(x), computed on every core
        net.backward(criterion.backward())     # adds into model's parameter gradients

    The model stays the one to train, save and load: its parameters, buffers, mode and
    state_dict are the replicas' too (shared arrays, synchronised at every call), and the
    optimizer is built on ``model.parameters()`` as always. A layer of your own that mixes
    the images of a batch must combine over the parts as BatchNorm2d does (CONTRIBUTING.md).
    One call at a time per model: from several threads, give each its own model.
    """

    def __init__(self, model, threads=None, min_part_values=MIN_PART_VALUES, timeout=None):
        for name, v in (("threads", threads), ("min_part_values", min_part_values)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"ThreadParallel: {name} must be a positive int or None, got {v!r}")
        timeout = BARRIER_TIMEOUT if timeout is None else timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise ValueError(f"ThreadParallel: timeout must be a positive number of seconds, got {timeout!r}")
        self.model, self.min_part_values, self.timeout = model, min_part_values or 1, timeout
        self.threads = threads or default_threads()     # MINIRES_NUM_THREADS is checked now, not at the first step
        self._replicas, self._signature = [model], None
        self._parts = None          # how the last forward split its batch (None: it ran the model alone)
        self._pool, self._pool_size = None, 0       # this object's worker threads (_workers)

    def __repr__(self):
        return f"ThreadParallel({self.threads} threads, {type(self.model).__name__})"

    def __getstate__(self):         # copy.deepcopy (a model holding a ThreadParallel): no threads copied
        return dict(vars(self), _pool=None, _pool_size=0)

    def __call__(self, x):
        return self.forward(x)

    def train(self, mode=True):
        self.model.train(mode)
        return self

    def eval(self):
        return self.train(False)

    @property
    def training(self):
        return self.model.training

    @property
    def parts(self):
        """How the last forward split its batch: [(start, stop), ...] per replica, or None
        when it ran the model alone."""
        return self._parts

    def zero_grad(self):
        """The model's gradients to 0 (the replicas' are zeroed by each backward)."""
        self.model.zero_grad()

    @contextlib.contextmanager
    def _one_call(self):
        """The block runs the model; a second call on it meanwhile (from another thread, or from a
        layer inside it) is refused: the two would share its layers' saved activations."""
        key, me = id(self.model), threading.current_thread().name
        with _running_lock:
            other = _running.get(key)
            if other is None:
                _running[key] = me
        if other is not None:
            raise RuntimeError(f"ThreadParallel: its model ({type(self.model).__name__}) is already in a forward or "
                               f"backward, on thread {other!r}; one call at a time: give each thread its own model")
        try:
            yield
        finally:
            with _running_lock:
                del _running[key]

    # ----- when to split, and the replicas -----
    def _split(self, x):
        """The batch's parts [(start, stop), ...], or None to run the model alone."""
        N = len(x) if getattr(x, "ndim", 0) else 0
        n = min(self.threads, N, x.size // self.min_part_values) if N else 0
        if n < 2 or is_plain() or xp_of(x) is not np or not blas_controllable():
            return None
        if replica_group()[0] is not None:      # already a replica's part: no threads within threads
            return None
        if any(isinstance(m, Dropout) or getattr(m, "group", None) is not None or has_hooks(m)
               for m in self.model.modules()):
            return None     # random numbers drawn in another order, batch norms already split (MPI), or hooks
        bounds = [N * k // n for k in range(n + 1)]
        return list(zip(bounds[:-1], bounds[1:]))

    def _replicas_for(self, n):
        """``n`` replicas, sharing the model's current parameter and buffer arrays."""
        model = self.model
        signature = [id(p.data) for p in model.parameters()] + [id(b) for b in model.buffers()]
        if signature != self._signature or len(self._replicas) < n:
            self._replicas = [model] + [self._copy(model) for _ in range(n - 1)]
            self._signature = signature
        for replica in self._replicas[1:n]:
            for mine, theirs in zip(replica.modules(), model.modules()):
                mine.training = theirs.training
        return self._replicas[:n]

    @staticmethod
    def _copy(model):
        """A deep copy whose parameters' data and whose buffers ARE the model's arrays; its
        gradients are its own, and it keeps nothing from the model's last forward."""
        memo = {id(p.data): p.data for p in model.parameters()}
        memo.update({id(b): b for b in model.buffers()})
        for m in model.modules():
            saved = vars(m).get("_saved")
            if saved is not None:
                memo[id(saved)] = None
        replica = copy.deepcopy(model, memo)
        for p in replica.parameters():
            p.grad = np.zeros_like(p.data)
        return replica

    def _run(self, fn, n):
        """``fn(rank)`` for rank 0..n-1 at once (rank 0 on this thread, the others on this object's
        own workers), each a member of one ReplicaGroup; returns the results in rank order, or
        raises the first real error. Returns only when every worker is done."""
        group = ReplicaGroup(n, self.timeout)
        results, errors = [None] * n, [None] * n

        def member(rank):
            before = replica_group()
            _local.group, _local.rank = group, rank
            norms = [m for m in self._replicas[rank].modules() if isinstance(m, BatchNorm2d)]
            for bn in norms:                # each batch norm combines over the replicas (nn/norm.py)
                vars(bn)["group"] = ReplicaPart(group, rank)
            try:
                results[rank] = fn(rank)
            except BaseException as e:      # noqa: B036 -- the others are released, then it is raised
                errors[rank] = e
                group.abort()
            finally:
                _local.group, _local.rank = before
                for bn in norms:
                    del vars(bn)["group"]

        pool = self._workers(n - 1)
        with blas_threads(1):
            futures = [pool.submit(member, rank) for rank in range(1, n)]
            member(0)
            for f in futures:
                f.result()
        if any(e is not None for e in errors):
            raise _first_error(errors)
        return results

    def _workers(self, n):
        """This object's own pool of at least ``n`` worker threads, made on its first split: no other
        object's call can hold them (a pool shared by every object deadlocked: module docstring)."""
        if self._pool_size < n:     # the old pool is idle: every call waits for all its workers
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool, self._pool_size = ThreadPoolExecutor(n, thread_name_prefix="minires-replica"), n
        return self._pool

    # ----- forward and backward -----
    def forward(self, x):
        """``model(x)``, the batch's parts on the replicas at once, the outputs stacked in order."""
        with self._one_call():
            parts = self._split(x)
            self._parts = parts
            if parts is None:
                return self.model(x)
            replicas = self._replicas_for(len(parts))
            outputs = self._run(lambda r: replicas[r](x[parts[r][0]:parts[r][1]]), len(parts))
            return np.concatenate(outputs)

    def backward(self, grad_out):
        """``model.backward(grad_out)``: each replica back through its part, then every replica's
        parameter gradients added into the model's (replica 0 is the model: it adds its own)."""
        with self._one_call():
            parts = self._parts
            if parts is None:
                return self.model.backward(grad_out)
            if len(grad_out) != parts[-1][1]:
                raise ValueError(f"ThreadParallel: the forward had a batch of {parts[-1][1]}, "
                                 f"the gradient has {len(grad_out)}")
            replicas = self._replicas[:len(parts)]
            for replica in replicas[1:]:
                for p in replica.parameters():
                    p.grad[...] = 0
            dx = self._run(lambda r: replicas[r].backward(grad_out[parts[r][0]:parts[r][1]]), len(parts))
            for replica in replicas[1:]:
                for mine, theirs in zip(self.model.parameters(), replica.parameters()):
                    mine.grad += theirs.grad
            return np.concatenate(dx)
