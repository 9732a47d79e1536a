"""A training run: its configuration, what it is built of, and the files of its run folder.

    cfg = make_config(model="resnet20", data="digits", epochs=30)   # defaults, checked
    run = Run(cfg)          # data, model, loss, optimizer, schedule, loaders, as cfg says
    run.save(path, ...)     # a checkpoint: model, momentum, schedule, where in the run
    run.load(path)          # ... and back

The run folder (``fit(out=...)``) holds config.json, metrics.csv (one row per epoch, the
``COLUMNS``), curves.png and the checkpoints last.npz and best.npz; ``run_summary`` ends a run
with what they hold. Under mpiexec only rank 0 writes them.
"""
import csv
import io
import json
import os
import time

import numpy as np

from .. import nn
from ..backend import check_device, to_numpy
from ..data import DataLoader, describe_dataset, hold_out, load_dataset
from ..keras import KERAS_MODELS
from ..parallel import ThreadParallel, mpi
from ..parallel.threads import environment_threads
from ..weights import atomic_write, save_checkpoint
from ..zoo import get_model
from . import data_parallel
from .lock import LOCK_NAME
from .notices import TrainingDiverged, check_finite_images
from .optim import SGD, make_schedule
from .runcheck import COLUMNS, DEFAULTS, FORMAT, CheckpointError, check_training_checkpoint, config_problems


def make_config(**options):
    """Defaults updated with ``options`` (None means 'the default'), validated, as a plain dict."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown training options: {', '.join(sorted(unknown))}")
    cfg = dict(DEFAULTS, **{k: v for k, v in options.items() if v is not None})
    problems = config_problems(cfg)
    if problems:
        raise ValueError("; ".join(problems))
    check_device(cfg["device"])
    return cfg


class Run:
    """Everything a training run is made of, built from a config: data, model, optimizer, schedule."""

    def __init__(self, cfg, root=None, download=True, checkpoint=None, check_inputs=True, clock=None):
        """``checkpoint``: the checked checkpoint ``(path, arrays, meta)`` the run will resume, or None;
        under mpiexec every rank's must be rank 0's (data_parallel.py checks it, with the data set).
        ``check_inputs``: refuse a data set whose images hold NaN or infinity (notices.py).
        ``clock``: the run's wall time, saved in its checkpoints (default: from now, a new run's)."""
        self.cfg, self.root, self.checkpoint = cfg, root, checkpoint
        self.clock = clock or Clock(time.perf_counter())
        self.train_set, self.test_set = load_dataset(cfg["data"], root=root, download=download,
                                                     image_size=cfg["image_size"])
        if check_inputs:
            check_finite_images(self.train_set, "training set")
            check_finite_images(self.test_set, "test set")
        self.val_set = self.best_weights = None   # the held-out part of the training set that chooses best.npz
        if cfg["val_fraction"]:
            self.train_set, self.val_set = hold_out(self.train_set, cfg["val_fraction"], cfg["seed"])
        C, _, _ = self.train_set.image_shape
        nn.manual_seed(cfg["seed"])  # the same seed, the same initial weights
        extra = {"classifier_activation": None} if cfg["model"] in KERAS_MODELS else {}   # logits for the loss
        self.model = get_model(cfg["model"], num_classes=self.train_set.num_classes, in_channels=C, **extra)
        self.model.to(cfg["device"], np.dtype(cfg["dtype"]))
        self.criterion = nn.CrossEntropyLoss()
        self.optimizer = SGD(self.model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                             weight_decay=cfg["weight_decay"])
        # drop_last: a last batch of one image would leave batch norm a single value per channel;
        # with W processes a step takes a global batch of batch_size x W images
        self.steps_per_epoch = len(self.train_set) // (cfg["batch_size"] * cfg["world_size"]) or 1
        total = cfg["epochs"] * self.steps_per_epoch
        self.schedule = make_schedule(cfg["schedule"], self.optimizer, total,
                                      warmup_steps=cfg["warmup_epochs"] * self.steps_per_epoch)
        # augment None: the data set's own recommendation (crop and flip for CIFAR-10, none for digits)
        augment = self.train_set.augment if cfg["augment"] in (None, True) else None
        if cfg["augment"] is True and augment is None:
            raise ValueError(f"the {cfg['data']} data set has no augmentation to switch on")
        self.train_loader = DataLoader(self.train_set, cfg["batch_size"], drop_last=True,
                                       device=cfg["device"], augment=augment)
        self.test_loader = DataLoader(self.test_set, 256, shuffle=False, device=cfg["device"])
        self.val_loader = None if self.val_set is None else DataLoader(self.val_set, 256, shuffle=False,
                                                                       device=cfg["device"])
        self.parallel = data_parallel.data_parallel(self)   # None in a single process
        # every core on one step: the batch split over replicas on threads (parallel/threads.py); with
        # several processes on one machine the cores are theirs already: one thread each
        threads = None if self.parallel is None or environment_threads() is not None else 1
        self.net = ThreadParallel(self.model, threads=threads)

    # ----- checkpoints -----
    def save(self, path, position, history, best):
        """Model, optimizer, schedule, the epoch's generator and the position in the run, atomically."""
        if self.parallel is not None:   # every rank's generator goes in; only rank 0 writes
            position = self.parallel.gather_position(position)
            if not mpi.is_writer():
                return
        arrays = {"model/" + k: to_numpy(v) for k, v in self.model.state_dict().items()}
        optim = self.optimizer.state_dict()
        arrays.update({f"optim/buffer{i}": b for i, b in enumerate(optim["buffers"])})
        bad = [k for k, a in arrays.items() if a.dtype.kind == "f" and not np.isfinite(a).all()]
        if bad:         # a checkpoint no run could resume (runcheck.py refuses it): the old file stays
            raise TrainingDiverged(f"{path} was not written: {', '.join(bad[:3])} hold NaN or infinity (training "
                                   "diverged); the file keeps what it held")
        meta = dict(config=self.cfg, position=position, history=history, best=best, time=self.clock.state_dict(),
                    optimizer=optim["hyper"], schedule=self.schedule.state_dict(), format=FORMAT,
                    dataset=describe_dataset(self.train_set))   # classes and statistics, for minires predict
        save_checkpoint(path, arrays, meta)

    def load(self, path, checked=None):
        """Restore model, optimizer and schedule from a checkpoint; returns its metadata.

        ``checked``: the ``(cfg, arrays, meta)`` of :func:`minires.train.runcheck.check_training_checkpoint`
        if already read. Everything is validated before the model changes (an error leaves
        this Run as it was built).
        """
        cfg, arrays, meta = checked or check_training_checkpoint(path, resume=False)
        if cfg["model"] != self.cfg["model"]:
            raise CheckpointError(f"{path} holds a {cfg['model']}, not a {self.cfg['model']}")
        sd = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
        n_buffers = len([k for k in arrays if k.startswith("optim/")])
        missing = [f"optim/buffer{i}" for i in range(n_buffers) if f"optim/buffer{i}" not in arrays]
        if missing:
            raise CheckpointError(f"{path}: momentum buffers are numbered 0..{n_buffers - 1}, missing {missing[:5]}")
        buffers = [arrays[f"optim/buffer{i}"] for i in range(n_buffers)]
        try:
            self.model.load_state_dict(sd)        # all or nothing: checked before anything changes
        except (KeyError, TypeError) as e:
            message = e.args[0] if isinstance(e, KeyError) and e.args else e
            C = self.train_set.image_shape[0]
            raise CheckpointError(f"{path}: its weights do not fit a {self.cfg['model']} for {self.cfg['data']} "
                                  f"({self.train_set.num_classes} classes, {C} input channel{'s' * (C > 1)}): "
                                  f"{message}") from None
        if "optimizer" in meta:
            try:
                self.optimizer.load_state_dict({"hyper": meta["optimizer"], "buffers": buffers})
                self.schedule.load_state_dict(meta["schedule"])
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                raise CheckpointError(f"{path}: cannot restore the optimizer and schedule: {e}") from e
        return meta

    def state_after(self, steps, epochs=None):
        """The optimizer's and schedule's saved state (as ``save`` writes them) that this run's
        configuration gives after ``steps`` steps: what a checkpoint of it must hold. Call it on a
        fresh Run, before ``load``; or give ``epochs``, the run's length (a checkpoint saved before
        the length changed, see extend.py), for the schedule made anew for that many."""
        plan = self.schedule
        if epochs is not None:          # the configuration's schedule, planned for that many epochs
            plan = make_schedule(self.cfg["schedule"], _LearningRate(self.cfg["lr"]), epochs * self.steps_per_epoch,
                                 warmup_steps=self.cfg["warmup_epochs"] * self.steps_per_epoch)
        schedule = plan.state_dict()
        schedule["t"] = steps
        if schedule.get("after") is not None:      # a warm-up, then the named schedule on its own clock
            schedule["after"]["t"] = max(0, steps - schedule["warmup_steps"])
        hyper = dict(self.optimizer.state_dict()["hyper"], lr=plan.lr_at(steps), step_count=steps)
        return {"optimizer": hyper, "schedule": schedule}


class _LearningRate:
    """What a schedule drives, without the optimizer: its ``lr``."""

    def __init__(self, lr):
        self.lr = lr


class Clock:
    """A run's wall time over every call that trained it: the earlier calls' (``saved``, from its
    checkpoint: ``{'wall': seconds, 'calls': n}``) and this call's, since ``started``."""

    def __init__(self, started, saved=None):
        self.started = started
        self.earlier, self.calls = (saved["wall"], saved["calls"]) if saved else (0.0, 0)

    def this_call(self):
        """Seconds since this call started."""
        return time.perf_counter() - self.started

    def state_dict(self):
        """What a checkpoint saved now keeps: the wall seconds and the calls, this one included."""
        return {"wall": self.earlier + self.this_call(), "calls": self.calls + 1}


# ----- the run folder -----

def write_config(path, cfg):
    """config.json: the run's configuration, written atomically."""
    _write_text(path, json.dumps(cfg, indent=2) + "\n")


def write_metrics(path, history, test=None):
    """metrics.csv, one row per finished epoch, written atomically; ``test`` (the test set's numbers
    of a finished run, see loop.py) goes into its epoch's row, the only one with test numbers."""
    rows = [dict(r) for r in history if "epoch" in r]
    if test is not None:
        rows[test["epoch"] - 1].update(test_loss=test["test_loss"], test_acc=test["test_acc"])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_text(path, buf.getvalue())


def _write_text(path, text):
    if not mpi.is_writer():   # under mpiexec only rank 0 writes files
        return
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


def run_summary(cfg, history, out, wall_seconds, stopped=False, unfinished_seconds=0.0, earlier=None, test=None):
    """The lines that end a run: the best and the final validation accuracy, the best's epoch, the
    test set's numbers (``test``, measured once at the end of a finished run), the time, the files.

    The time is the whole run's: its training steps (the finished epochs', and
    ``unfinished_seconds`` of an epoch stopped half-way), and its wall time, ``wall_seconds`` in
    this call and, for a resumed run, ``earlier``: (wall seconds, calls) before it."""
    done = f"{len(history)} of {cfg['epochs']} epochs"
    steps = sum(r["seconds"] for r in history) + unfinished_seconds
    wall = f"{wall_seconds:.1f} s in this call"
    if earlier and earlier[1]:
        wall = f"{earlier[0] + wall_seconds:.1f} s in {earlier[1] + 1} calls ({wall_seconds:.1f} s in this one)"
    lines = [f"{'stopped' if stopped else 'finished'}: {cfg['model']} on {cfg['data']}, {done}, "
             f"{steps:.1f} s of training steps, {wall}"]
    files = out is not None
    if history and cfg.get("val_fraction"):
        best = max(history, key=lambda r: r["val_acc"])     # the first of equals, as best.npz keeps it
        lines.append(f"  best validation accuracy  {best['val_acc']:.2%} at epoch {best['epoch']}"
                     + (" (best.npz)" if files else ""))
        lines.append(f"  final validation accuracy {history[-1]['val_acc']:.2%} at epoch {history[-1]['epoch']}"
                     + (" (last.npz)" if files else ""))
    elif history:
        lines.append("  no validation set (val_fraction 0): the last epoch is the one kept"
                     + (" (last.npz)" if files else ""))
    else:
        lines.append("  no epoch finished yet")
    if test is not None:
        lines.append(f"  test accuracy {test['test_acc']:.2%} (loss {test['test_loss']:.4f}) at epoch {test['epoch']}"
                     + (f" ({test['checkpoint']})" if test["checkpoint"] else "") + ", measured once, at the end")
    elif history:
        lines.append("  test accuracy: measured once the run has finished"
                     + (f" (minires train --resume {out})" if files else ""))
    if out is not None and os.path.isdir(out):
        names = sorted(f for f in os.listdir(out) if not f.endswith(".tmp") and f != LOCK_NAME)
        lines.append(f"  run folder {out}: " + ", ".join(f"{f} ({_size(os.path.join(out, f))})" for f in names))
    return "\n".join(lines)


def _size(path):
    n = os.path.getsize(path)
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.1f} kB" if n >= 2**10 else f"{n} B"
