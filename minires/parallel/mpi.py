"""Data parallelism over MPI: every process holds the whole model and takes its shard of each batch.

    mpiexec -n 4 minires train            # 4 processes, each a rank of one MPI world

One step of data-parallel SGD on W processes, each with its own B images:

    loss_r = criterion(model(x_r), y_r)     # rank r: the mean over ITS B images
    model.backward(...)                      # every p.grad holds d loss_r / dp
    average_gradients(model, world)          # ONE all-reduce: p.grad = (1/W) sum_r d loss_r / dp
    optimizer.step()                         # the same update on every rank: the models stay equal

Why this is one big batch: the mean over W*B images is the mean of the W per-rank means, and
the gradient of a mean is the mean of the gradients. So W ranks with B images each take exactly
the step one process takes with W*B images -- as long as no layer mixes images of a batch.
Batch norm does: its statistics are over the rank's B images, not the W*B. Synchronised
(``minires/parallel/syncbn.py``), it gathers every rank's and combines them, and the equality is
exact again.

The world (``get_world()``): under an MPI launcher with more than one process (``mpiexec``,
``srun``), an ``MPIWorld`` over mpi4py's COMM_WORLD; otherwise ``SINGLE``, a world of one, and
mpi4py is never imported -- a single-process run is the run it always was. ``simulate(n, fn)``
runs n ranks as threads of this process (a simulation, for teaching and tests: threads share
minires's global switches, so it runs code that does not flip ``no_grad``). Each rank's share
of an epoch: ``DistributedSampler`` (``minires/parallel/sampler.py``).
"""
import hashlib
import os
import sys
import threading
import traceback

import numpy as np

from ..backend import gpu_available, to_numpy, xp_of

# ----- the world: who am I, how many are we, and the collective operations -----


class SingleWorld:
    """A world of one process: every collective operation is the identity."""

    rank, size, local_rank, local_size, backend = 0, 1, 0, 1, "single process"

    def allreduce(self, a, op="sum"):
        return a

    def broadcast(self, a, root=0):
        return a

    def broadcast_object(self, obj, root=0):
        return obj

    def allgather_object(self, obj):
        return [obj]

    def barrier(self):
        pass

    def abort(self, code=1):
        raise SystemExit(code)


SINGLE = SingleWorld()
_OPS = ("sum", "max", "min")


class MPIWorld:
    """COMM_WORLD of mpi4py. Arrays are reduced in place: NumPy arrays directly, CuPy arrays
    through NCCL when ``cupy.cuda.nccl`` works for this set of GPUs, else through host copies."""

    def __init__(self, comm):
        from mpi4py import MPI
        self.MPI, self.comm = MPI, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        here = comm.Split_type(MPI.COMM_TYPE_SHARED)                         # the processes on this machine
        self.local_rank, self.local_size = here.Get_rank(), here.Get_size()
        self.backend = "MPI, " + " ".join(MPI.Get_library_version().split()[:3])   # e.g. 'MPICH Version: 5.0.2'
        self._nccl = None                                                    # created on first CuPy use
        if gpu_available():   # one GPU per process on each machine: the local rank's, round robin
            import cupy
            cupy.cuda.Device(self.local_rank % cupy.cuda.runtime.getDeviceCount()).use()

    def allreduce(self, a, op="sum"):
        """Sum (or max, min) of ``a`` over all ranks, written into ``a`` on every rank; returns ``a``."""
        _check_op(op)
        if xp_of(a) is not np:
            return self._allreduce_gpu(a, op)
        _check_contiguous(a, "allreduce")
        self.comm.Allreduce(self.MPI.IN_PLACE, a, op={"sum": self.MPI.SUM, "max": self.MPI.MAX,
                                                      "min": self.MPI.MIN}[op])
        return a

    def broadcast(self, a, root=0):
        """Rank ``root``'s ``a`` copied into ``a`` on every rank; returns ``a``."""
        if xp_of(a) is not np:
            host = to_numpy(a)
            self.broadcast(host, root)
            a[...] = xp_of(a).asarray(host)
            return a
        _check_contiguous(a, "broadcast")
        self.comm.Bcast(a, root=root)
        return a

    def broadcast_object(self, obj, root=0):
        return self.comm.bcast(obj, root=root)

    def allgather_object(self, obj):
        return self.comm.allgather(obj)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, code=1):
        """End every process of the world (the others may be waiting in a collective: never a hang)."""
        sys.stdout.flush()
        sys.stderr.flush()
        threading.Event().wait(1.0)   # mpiexec forwards what was printed: Abort's kill may end it before it reads
        self.comm.Abort(code)
        os._exit(code)   # the launcher is ending every rank; run no exit handlers (MPI_Finalize) meanwhile

    # GPU arrays (CuPy): NCCL, or a round trip through host memory
    def _allreduce_gpu(self, a, op):
        nccl = self._nccl_comm()
        if nccl is None:   # host buffers: always works, costs two copies over PCIe
            host = np.ascontiguousarray(to_numpy(a))
            self.allreduce(host, op)
            a[...] = xp_of(a).asarray(host)
            return a
        from cupy.cuda import nccl as N
        import cupy
        _check_contiguous(a, "allreduce")
        types = {np.dtype(np.float32): N.NCCL_FLOAT32, np.dtype(np.float64): N.NCCL_FLOAT64,
                 np.dtype(np.int64): N.NCCL_INT64}
        ops = {"sum": N.NCCL_SUM, "max": N.NCCL_MAX, "min": N.NCCL_MIN}
        nccl.allReduce(a.data.ptr, a.data.ptr, a.size, types[a.dtype], ops[op],
                       cupy.cuda.get_current_stream().ptr)
        return a

    def _nccl_comm(self):
        """An NCCL communicator over the same ranks, or None: no NCCL, two ranks on one GPU (which
        NCCL refuses), or NCCL failed on some rank. ``MINIRES_ALLREDUCE=host`` forces host buffers.
        Every decision is taken by all ranks together: one rank in NCCL alone would wait forever."""
        if self._nccl is None:
            import socket

            import cupy
            try:
                from cupy.cuda import nccl
            except ImportError:
                nccl = None
            gpus = self.comm.allgather((socket.gethostname(), cupy.cuda.Device().id))
            wanted = nccl is not None and os.environ.get("MINIRES_ALLREDUCE", "nccl") == "nccl"
            self._nccl = False
            if self.comm.allreduce(int(wanted), op=self.MPI.MIN) and len(set(gpus)) == len(gpus):
                uid = self.comm.bcast(nccl.get_unique_id() if self.rank == 0 else None, root=0)
                try:
                    comm = nccl.NcclCommunicator(self.size, uid, self.rank)
                except Exception:
                    comm = False
                if self.comm.allreduce(int(comm is not False), op=self.MPI.MIN):
                    self._nccl = comm
        return self._nccl or None


def _check_op(op):
    if op not in _OPS:
        raise ValueError(f"allreduce: op must be one of {_OPS}, got {op!r}")


def _check_contiguous(a, what):
    if not a.flags.c_contiguous:
        raise ValueError(f"{what}: the array must be C-contiguous (got strides {a.strides}); "
                         "reduce a contiguous copy, e.g. np.ascontiguousarray(a)")


_thread = threading.local()   # a simulated rank's world (see simulate); None in a real process
_world = None


def launcher_size(environ=None):
    """How many processes the MPI launcher started, read from the variables it sets (1 if none).

    Decided without importing mpi4py: Hydra (MPICH, Intel MPI) and SLURM's PMI-2 set PMI_SIZE,
    Open MPI sets OMPI_COMM_WORLD_SIZE, MVAPICH MV2_COMM_WORLD_SIZE, srun with PMIx PMIX_RANK
    and SLURM_STEP_NUM_TASKS."""
    env = os.environ if environ is None else environ
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"):
        if env.get(var, "").isdigit():
            return int(env[var])
    if "PMIX_RANK" in env and env.get("SLURM_STEP_NUM_TASKS", "").isdigit():
        return int(env["SLURM_STEP_NUM_TASKS"])
    return 1


def get_world():
    """This process's world: an MPIWorld under a launcher with more than one process, else SINGLE."""
    global _world
    simulated = getattr(_thread, "world", None)
    if simulated is not None:
        return simulated
    if _world is None:
        size = launcher_size()
        if size <= 1:
            _world = SINGLE
        else:
            try:
                from mpi4py import MPI
            except ImportError:
                raise RuntimeError(f"started by an MPI launcher as one of {size} processes, but mpi4py is not "
                                   "installed: pip install mpi4py mpich, or pip install '.[mpi]' from a checkout "
                                   "(or run without mpiexec)") from None
            _world = MPIWorld(MPI.COMM_WORLD)
            _install_excepthook(_world)
    return _world


def current_world():
    """The world if get_world() has made one, else None (never imports mpi4py)."""
    return getattr(_thread, "world", None) or _world


def is_writer():
    """True on the rank that writes files and prints (rank 0; the only one in a single process)."""
    return get_world().rank == 0


# ----- a rank that raises ends every rank -----

def _install_excepthook(world):
    """An uncaught exception on any rank prints its traceback and aborts the whole world:
    the other ranks may be waiting for this one in an all-reduce, and would wait forever."""
    def hook(kind, value, tb):
        sys.stderr.write(f"[rank {world.rank} of {world.size}] " + "".join(traceback.format_exception(kind, value, tb)))
        world.abort(1)

    sys.excepthook = hook


def abort_others(world, message):
    """Print ``message`` (this rank's error) and end every process of ``world`` (no-op for one)."""
    if world.size > 1:
        print(f"[rank {world.rank} of {world.size}] {message}", file=sys.stderr, flush=True)
        world.abort(1)


# ----- simulating ranks with threads -----

class LocalWorld:
    """One of ``size`` ranks simulated by threads of this process (see ``simulate``).

    An all-reduce: every rank puts a copy of its array in a shared slot, waits for all (a
    barrier), adds the slots up in rank order (the same sum, bit for bit, on every rank),
    and waits again before the slots are reused.
    """

    backend = "threads of one process (a simulation)"

    def __init__(self, rank, size, shared):
        self.rank, self.size, self._shared = rank, size, shared
        self.local_rank, self.local_size = rank, size       # all on this machine

    def _exchange(self, value):
        slots, barrier = self._shared["slots"], self._shared["barrier"]
        slots[self.rank] = value
        barrier.wait()
        values = list(slots)
        barrier.wait()
        return values

    def allreduce(self, a, op="sum"):
        _check_op(op)
        values = self._exchange(a.copy())
        result = values[0]
        for v in values[1:]:
            result = {"sum": lambda p, q: p + q, "max": xp_of(a).maximum, "min": xp_of(a).minimum}[op](result, v)
        a[...] = result
        return a

    def broadcast(self, a, root=0):
        a[...] = self._exchange(a.copy())[root]
        return a

    def broadcast_object(self, obj, root=0):
        return self._exchange(obj)[root]

    def allgather_object(self, obj):
        return self._exchange(obj)

    def barrier(self):
        self._exchange(None)

    def abort(self, code=1):
        self._shared["barrier"].abort()
        raise SystemExit(code)


def simulate(size, fn, *args):
    """Run ``fn(*args)`` on ``size`` simulated ranks (threads); inside, ``get_world()`` is the
    thread's LocalWorld. Returns the list of results in rank order. If one rank raises, the
    others are released from their barriers and its exception is raised here (never a hang)."""
    shared = {"slots": [None] * size, "barrier": threading.Barrier(size)}
    results, errors = [None] * size, [None] * size

    def run(rank):
        _thread.world = LocalWorld(rank, size, shared)
        try:
            results[rank] = fn(*args)
        except BaseException as e:   # noqa: B036 -- ends every rank, then re-raised below
            errors[rank] = e
            shared["barrier"].abort()
        finally:
            _thread.world = None

    threads = [threading.Thread(target=run, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = next((e for e in errors if e is not None and not isinstance(e, threading.BrokenBarrierError)), None)
    first = first or next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return results


# ----- what data parallelism needs: equal start, averaged gradients, a check -----

def broadcast_state(model, world=None, root=0):
    """Every parameter and buffer of ``model`` set to rank ``root``'s values, so all ranks start equal."""
    world = world or get_world()
    for value in model.state_dict().values():
        world.broadcast(value, root)


def average_gradients(model_or_params, world=None):
    """p.grad = the mean of p.grad over the ranks, for every parameter, with one all-reduce.

    The gradients are copied into one flat buffer (one per dtype), summed across ranks in a
    single all-reduce -- one message instead of one per tensor: ResNet-50 has 161 -- divided
    by the world size and copied back. (PyTorch's DDP cuts the buffer into ~25 MB buckets and
    starts reducing the last layers' while the first layers' backward still runs; here the
    whole backward is one call, so one bucket it is.)
    """
    world = world or get_world()
    params = model_or_params.parameters() if hasattr(model_or_params, "parameters") else list(model_or_params)
    if world.size == 1:
        return
    groups = {}
    for p in params:
        groups.setdefault(np.dtype(p.grad.dtype), []).append(p)
    for group in groups.values():
        xp = xp_of(group[0].grad)
        flat = xp.concatenate([p.grad.ravel() for p in group])      # copy in
        world.allreduce(flat)                                       # sum over ranks, in place
        flat /= world.size                                          # the mean
        offset = 0
        for p in group:                                             # copy out
            p.grad[...] = flat[offset:offset + p.grad.size].reshape(p.grad.shape)
            offset += p.grad.size


def check_same_everywhere(facts, world=None):
    """Raise on every rank if ``facts`` differ between ranks: (name, value) pairs, or (name, value,
    where) triples whose ``where`` (the file the value was read from) is named, not compared.

    Cheap when they agree: one all-reduce of a 64-bit hash (max and min). Only when the hashes
    differ are the lists gathered, to name the first difference, the same on every rank.
    """
    world = world or get_world()
    if world.size == 1:
        return
    h = int.from_bytes(hashlib.sha256(repr([tuple(f[:2]) for f in facts]).encode()).digest()[:7], "little")
    both = np.array([h, -h], dtype=np.int64)
    world.allreduce(both, op="max")
    if both[0] == h and -both[1] == h:
        return
    everyone = world.allgather_object(list(facts))
    for r, theirs in enumerate(everyone):
        for mine, other in zip(everyone[0], theirs):
            if tuple(mine[:2]) != tuple(other[:2]):
                raise RanksDiffer(
                    f"the ranks run different settings: {mine[0]} is {mine[1]!r} on rank 0 but {other[1]!r} on rank "
                    f"{r} (every rank must start the same model with the same options)" if len(mine) == 2 else
                    f"the ranks loaded different {mine[0]}s: rank {r}'s ({other[2]}) has {other[1]}, rank 0's "
                    f"({mine[2]}) has {mine[1]}; every rank must load the same {mine[0]}")
        if len(theirs) != len(everyone[0]):
            raise RanksDiffer(f"the ranks run different models: rank 0 has {len(everyone[0])} settings and "
                              f"parameters, rank {r} has {len(theirs)}")


class RanksDiffer(RuntimeError):
    """Raised alike on every rank (they gathered the same facts): printed once, by rank 0 (cli/)."""
    raised_on_every_rank = True


def model_facts(model, config=None, loaded=()):
    """(name, value) pairs that must agree on every rank: the config, each parameter's shape and dtype;
    between them ``loaded``, (name, content hash, where) triples of the files the ranks read."""
    facts = [(f"option '{k}'", v) for k, v in sorted((config or {}).items())] + [tuple(f) for f in loaded]
    return facts + [(f"parameter {n}", (tuple(p.data.shape), str(p.data.dtype))) for n, p in model.named_parameters()]
