"""The hooks minires.train calls when more than one process trains (see minires/parallel/mpi.py).

Each is one step of the single-process loop done for W processes: the config records the
world and which batch is which, each rank takes its shard of the epoch's permutation, the
gradients are averaged after backward, the step's numbers and the validation set's are added
up over the ranks (the test set, measured once at the end, is rank 0's alone), a Ctrl-C or SIGTERM stops every rank at the same batch, and a step that blew up
on one rank stops them all, with its rank's reason. With one process ``data_parallel(run)``
returns None and fit (loop.py) runs as it always did.

Errors are said once. The checks before training run on every rank and end in one collective
(``agree_on_errors``): if any rank refused, every rank raises, rank 0 the error to print, and
the exception is marked ``raised_on_every_rank`` (so is a divergence, which every rank meets at
the same step): the command line prints it on rank 0 alone and no rank is left waiting.

Before the first step the ranks agree, in one collective, on the options, the model, and what
each loaded: its data set and the checkpoint it resumes, compared by content hash; a difference
names the rank and the file, and every rank stops (never one left waiting in an all-reduce).
Each process runs its matrix multiplies on one BLAS thread (``blas_per_process``) unless
OPENBLAS_NUM_THREADS or OMP_NUM_THREADS says otherwise, with a warning where processes x BLAS
threads exceed the cores.
"""
import contextlib
import functools
import hashlib
import inspect
import json
import os
import sys

import numpy as np

from ..data import DataLoader, default_root
from ..parallel.mpi import average_gradients, broadcast_state, check_same_everywhere, get_world, is_writer, model_facts
from ..parallel.sampler import DistributedSampler
from ..parallel.syncbn import convert_sync_batchnorm
from ..parallel.blas import blas_controllable, blas_threads
from .evaluate import evaluate


def configure(cfg, world, resume):
    """The training config for this world: records ``world_size``; ``batch_size`` is per process.

    A resumed run keeps its *global* batch (per-process batch x processes): resumed on another
    number of processes, each takes global / processes images, so the steps, the schedule and
    the order of the global batches stay the run's.
    """
    saved = cfg.get("world_size", 1)
    if not resume or saved == world.size:
        return dict(cfg, world_size=world.size)
    global_batch = cfg["batch_size"] * saved
    if global_batch % world.size:
        raise ValueError(f"this run's global batch of {global_batch} ({cfg['batch_size']} x {saved} processes) "
                         f"cannot be split evenly over {world.size} processes; resume it on a number of "
                         f"processes that divides {global_batch}")
    print(f"resuming a run of {saved} process(es) on {world.size}: the global batch stays {global_batch} "
          f"({global_batch // world.size} per process)")
    return dict(cfg, batch_size=global_batch // world.size, world_size=world.size)


def describe(cfg, world):
    """The first log line of a data-parallel run: the world, and which batch is which."""
    B, W = cfg["batch_size"], world.size
    return (f"data parallel: world_size {W} ({world.backend}); batch {B} per process x {W} processes = "
            f"global batch {B * W}\n  (one SGD step averages over the global batch, and the learning rate "
            f"{cfg['lr']} goes with it: change the global batch k-fold, scale the learning rate k-fold, "
            f"with warm-up; batch norm: "
            + ("synchronised over all processes)" if cfg.get("sync_bn") else
               f"statistics over each process's {B} images, --sync-bn for all {B * W})"))


def data_parallel(run):
    """The DataParallel hooks for a training Run, or None in a single process."""
    world = get_world()
    return DataParallel(run, world) if world.size > 1 else None


class DataParallel:
    """What a training run does differently on W > 1 processes; minires.train calls these hooks.

    Built at the end of Run.__init__: converts batch norms if ``sync_bn``, checks in one
    collective that every rank runs the same config and model on the same data set from the same
    checkpoint (content hashes of what each loaded), copies rank 0's parameters and buffers to
    all, and gives each rank its share of the validation set.
    """

    def __init__(self, run, world):
        cfg, self.world, self.run = run.cfg, world, run
        if cfg.get("world_size") != world.size:
            raise ValueError(f"the config says world_size {cfg.get('world_size')} but {world.size} processes "
                             "run it; start training through minires.train.fit, which sets it")
        if cfg.get("sync_bn"):
            convert_sync_batchnorm(run.model)
        check_same_everywhere(model_facts(run.model, cfg, loaded=[checkpoint_fact(run.checkpoint), data_fact(run)]),
                              world)
        broadcast_state(run.model, world)
        self.sampler = DistributedSampler(len(run.train_set), world.size, world.rank, seed=cfg["seed"])
        if run.val_set is not None:     # each epoch's validation: each rank its share, no image counted twice
            share = np.arange(world.rank, len(run.val_set), world.size)
            run.val_loader = DataLoader(run.val_set.subset(share), 256, shuffle=False, device=cfg["device"])

    def shard(self, order, epoch):
        """This epoch's permutation -> this rank's indices, and its own generator for augmentation."""
        return self.sampler.split(order), np.random.default_rng([self.run.cfg["seed"], epoch, 1 + self.world.rank])

    def average_gradients(self):
        average_gradients(self.run.model, self.world)

    def stop_flags(self, signals):
        """Stop flags (loop.py's ``finish_batch_on_signals``) that change only where all ranks agree,
        in reduce_step and evaluate: mpiexec passes Ctrl-C and SIGTERM to every rank, each at its own
        moment (SLURM may signal only some), and a rank that stopped alone would leave the others
        waiting in an all-reduce. The signal agreed on is SIGTERM if any rank got it (its exit code
        is the job's), else SIGINT."""
        return {"stop": False, "signal": None, "raw": signals}

    @staticmethod
    def _votes(stop):
        """This rank's say on stopping, as two numbers to add up: stop?, and SIGTERM?"""
        return float(stop["raw"]["stop"]), float(stop["raw"]["signal"] == "SIGTERM")

    @staticmethod
    def _agree(stop, votes):
        stop["stop"] = bool(votes[0])
        stop["signal"] = ("SIGTERM" if votes[1] else "SIGINT") if votes[0] else None

    def reduce_step(self, loss, correct, seen, stop):
        """This rank's (mean loss, correct, images) -> the global batch's, and the agreed stop flags."""
        sums = np.array([loss * seen, correct, seen, *self._votes(stop)])
        self.world.allreduce(sums)
        self._agree(stop, sums[3:])
        return sums[0] / sums[2], int(sums[1]), int(sums[2])

    def first_problem(self, own):
        """Every rank stops at a step that blew up on some rank (its NaN reached every gradient): the
        first rank's own reason (``own``: a sentence, or None), the same on every rank, or None."""
        reasons = self.world.allgather_object(own)
        first = next((r for r, reason in enumerate(reasons) if reason is not None), None)
        return None if first is None else f"{reasons[first]} (on rank {first} of {self.world.size})"

    def evaluate(self, model, criterion, stop):
        """(validation loss, accuracy) over the whole validation set, each rank taking its share. Batch
        norm's running statistics are rank 0's first (without --sync-bn they drift apart, as DDP's)."""
        for name, value in model.named_buffers():
            self.world.broadcast(value)
        loss, acc, _, labels = evaluate(model, self.run.val_loader, criterion)
        n = len(labels)
        sums = np.array([loss * n, acc * n, n, *self._votes(stop)])
        self.world.allreduce(sums)
        self._agree(stop, sums[3:])
        return sums[0] / sums[2], sums[1] / sums[2]

    def gather_position(self, position):
        """Mid-epoch, every rank's augmentation generator goes into the checkpoint (rank 0's as 'rng')."""
        if position.get("rng") is None:
            return position
        return dict(position, rngs=self.world.allgather_object(position["rng"]))

    def restore_position(self, position):
        """A checkpoint's position for this rank: its own generator if the run had as many ranks;
        otherwise a fresh one for the rest of the epoch (the augmentation then differs)."""
        if position.get("rng") is None:
            return position
        rngs = position.get("rngs") or []
        if len(rngs) == self.world.size:
            return dict(position, rng=rngs[self.world.rank])
        fresh = np.random.default_rng([self.run.cfg["seed"], position["epoch"], 1 + self.world.rank, position["batch"]])
        return dict(position, rng=fresh.bit_generator.state)


# ----- before the first step: the ranks agree on what they loaded -----

def data_fact(run):
    """('data set', content hash, where) of the data set a Run loaded: images, labels, classes."""
    h = hashlib.sha256()
    for part in (run.train_set, run.val_set, run.test_set):
        if part is None:
            continue
        h.update(repr((part.classes, part.images.shape, str(part.images.dtype))).encode())
        for a in (part.images, part.labels):
            h.update(np.ascontiguousarray(a).data)
    where = "bundled with scikit-learn" if run.cfg["data"] == "digits" else f"in {run.root or default_root()}"
    return "data set", f"content sha256 {h.hexdigest()[:16]}", f"{run.cfg['data']}, {where}"


def checkpoint_fact(checkpoint):
    """('checkpoint', content hash, file) of what a Run resumes: ``(path, arrays, meta)``, or None."""
    if checkpoint is None:
        return "checkpoint", "none (a new run)", "none"
    path, arrays, meta = checkpoint
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for key in sorted(arrays):
        h.update(repr((key, arrays[key].shape, str(arrays[key].dtype))).encode())
        h.update(np.ascontiguousarray(arrays[key]).data)
    return "checkpoint", f"content sha256 {h.hexdigest()[:16]}", path


# ----- BLAS threads: one per process, unless the environment says otherwise -----

BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def blas_per_process(world=None):
    """Under mpiexec, each process's matrix multiplies on one BLAS thread inside the block
    (unless a variable of ``BLAS_VARIABLES`` chose), and a warning on stderr from each
    machine's first process when processes x BLAS threads exceed its cores."""
    world = world or get_world()
    threads, warning = blas_threads_per_process(world)
    if warning and world.local_rank == 0:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    with blas_threads(threads) if threads else contextlib.nullcontext():
        yield


def blas_threads_per_process(world, environ=None, cores=None, controllable=None):
    """(threads, warning) for the processes of ``world`` on this machine.

    ``threads``: how many BLAS threads each process should run its matrix multiplies on: 1 under
    mpiexec, unless a variable of ``BLAS_VARIABLES`` chose; None: leave the BLAS as it is. Two
    processes on 2 cores, each with OpenBLAS's default of a thread per core, are 4 threads taking
    turns on 2 cores, and every all-reduce waits for the slowest: a digits epoch took 8x as long
    in issue 26, 27x in one measurement on a busy machine. ``warning``: a sentence when processes
    x BLAS threads exceed the cores, else None. ``controllable``: whether this NumPy's BLAS can
    be set from Python (``blas_controllable()``).
    """
    env = os.environ if environ is None else environ
    cores = cores or os.cpu_count() or 1
    if world.size == 1:
        return None, None
    chosen = next((v for v in BLAS_VARIABLES if env.get(v, "").strip().isdigit()), None)
    controllable = blas_controllable() if controllable is None else controllable
    threads = None if chosen or not controllable else 1
    each = max(int(env[chosen]) if chosen else threads or cores, 1)    # a BLAS left alone: a thread per core
    if world.local_size * each <= cores:
        return threads, None
    if chosen:
        why, fix = f"{chosen}={env[chosen]}", "set it to 1, or unset it: minires then gives each process one"
    elif threads is None:
        why, fix = "this NumPy's BLAS cannot be set from Python", "set OMP_NUM_THREADS=1 and OPENBLAS_NUM_THREADS=1"
    else:
        why, fix = "one each, and still more processes than cores", "run fewer processes"
    return threads, (f"{world.local_size} processes on this machine x {each} BLAS thread{'s' * (each > 1)} ({why}) "
                     f"= {world.local_size * each} threads on {cores} cores: they take turns, and every all-reduce "
                     f"waits for the slowest; {fix}")


def agree_on_errors(checks, *args):
    """``checks(*args)`` on every rank, then one collective: if any rank raised, every rank raises,
    marked ``raised_on_every_rank`` -- its own error, or, on a rank that passed, a RuntimeError naming
    the first rank that did not. Rank 0's is the one to print. ``checks`` must not itself
    communicate (it runs before the ranks know whether all of them will get past it)."""
    world = get_world()
    try:
        result, error = checks(*args), None
    except Exception as e:        # noqa: BLE001 -- every rank hears of it below
        result, error = None, e
    if world.size == 1:
        if error is not None:
            raise error
        return result
    said = world.allgather_object(None if error is None else f"{error}")
    first = next((r for r, text in enumerate(said) if text is not None), None)
    if first is None:
        return result
    if error is None:
        error = RuntimeError(f"rank {first} of {world.size} stopped before training: {said[first]}")
    error.raised_on_every_rank = True
    raise error


def rank0_prints(fit):
    """Decorator for fit: on ranks other than 0, no output, no progress bar, no figures."""
    signature = inspect.signature(fit)

    @functools.wraps(fit)
    def wrapper(*args, **kwargs):
        if is_writer():
            return fit(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.arguments.update(progress=False, plot=False)
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            return fit(*bound.args, **bound.kwargs)
    return wrapper
