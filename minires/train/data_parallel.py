"""The hooks minires.train calls when more than one process trains (see minires/parallel/mpi.py).

Each is one step of the single-process loop done for W processes: the config records the
world and which batch is which, each rank takes its shard of the epoch's permutation, the
gradients are averaged after backward, the step's numbers and the test set's are added up
over the ranks, and a Ctrl-C stops every rank at the same batch. With one process
``data_parallel(run)`` returns None and fit (loop.py) runs as it always did.
"""
import contextlib
import functools
import inspect
import os

import numpy as np

from ..data import DataLoader
from ..parallel.mpi import average_gradients, broadcast_state, check_same_everywhere, get_world, is_writer, model_facts
from ..parallel.sampler import DistributedSampler
from ..parallel.syncbn import convert_sync_batchnorm
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

    Built at the end of Run.__init__: converts batch norms if ``sync_bn``, checks every rank
    runs the same config and model, copies rank 0's parameters and buffers to all, and gives
    each rank its share of the test set.
    """

    def __init__(self, run, world):
        cfg, self.world, self.run = run.cfg, world, run
        if cfg.get("world_size") != world.size:
            raise ValueError(f"the config says world_size {cfg.get('world_size')} but {world.size} processes "
                             "run it; start training through minires.train.fit, which sets it")
        if cfg.get("sync_bn"):
            convert_sync_batchnorm(run.model)
        check_same_everywhere(model_facts(run.model, cfg), world)
        broadcast_state(run.model, world)
        self.sampler = DistributedSampler(len(run.train_set), world.size, world.rank, seed=cfg["seed"])
        share = np.arange(world.rank, len(run.test_set), world.size)   # no padding: no image counted twice
        run.test_loader = DataLoader(run.test_set.subset(share), 256, shuffle=False, device=cfg["device"])

    def shard(self, order, epoch):
        """This epoch's permutation -> this rank's indices, and its own generator for augmentation."""
        return self.sampler.split(order), np.random.default_rng([self.run.cfg["seed"], epoch, 1 + self.world.rank])

    def average_gradients(self):
        average_gradients(self.run.model, self.world)

    def stop_flags(self, ctrl_c):
        """A Ctrl-C flag that changes only where all ranks agree (in reduce_step and evaluate):
        mpiexec passes Ctrl-C to every rank, each at its own moment, and a rank that stopped
        alone would leave the others waiting in an all-reduce."""
        return {"stop": False, "raw": ctrl_c}

    def reduce_step(self, loss, correct, seen, ctrl_c):
        """This rank's (mean loss, correct, images) -> the global batch's, and the agreed stop flag."""
        sums = np.array([loss * seen, correct, seen, float(ctrl_c["raw"]["stop"])])
        self.world.allreduce(sums)
        ctrl_c["stop"] = bool(sums[3])
        return sums[0] / sums[2], int(sums[1]), int(sums[2])

    def evaluate(self, model, criterion, ctrl_c):
        """(test loss, accuracy) over the whole test set, each rank taking its share. Batch norm's
        running statistics are rank 0's first (without --sync-bn they drift apart, as DDP's)."""
        for name, value in model.named_buffers():
            self.world.broadcast(value)
        loss, acc, _, labels = evaluate(model, self.run.test_loader, criterion)
        n = len(labels)
        sums = np.array([loss * n, acc * n, n, float(ctrl_c["raw"]["stop"])])
        self.world.allreduce(sums)
        ctrl_c["stop"] = bool(sums[3])
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
