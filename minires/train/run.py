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

import numpy as np

from .. import nn
from ..backend import check_device, to_numpy
from ..data import DataLoader, load_dataset
from ..keras import KERAS_MODELS
from ..parallel import ThreadParallel, mpi
from ..parallel.threads import environment_threads
from ..weights import atomic_write, save_checkpoint
from ..zoo import get_model
from . import data_parallel
from .lock import LOCK_NAME
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

    def __init__(self, cfg, root=None, download=True, checkpoint=None):
        """``checkpoint``: the checked checkpoint ``(path, arrays, meta)`` the run will resume, or None;
        under mpiexec every rank's must be rank 0's (data_parallel.py checks it, with the data set)."""
        self.cfg, self.root, self.checkpoint = cfg, root, checkpoint
        self.train_set, self.test_set = load_dataset(cfg["data"], root=root, download=download)
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
        meta = dict(config=self.cfg, position=position, history=history, best=best,
                    optimizer=optim["hyper"], schedule=self.schedule.state_dict(), format=FORMAT)
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

    def state_after(self, steps):
        """The optimizer's and schedule's saved state (as ``save`` writes them) that this run's
        configuration gives after ``steps`` steps: what a checkpoint of it must hold. Call it on a
        fresh Run, before ``load``."""
        schedule = self.schedule.state_dict()
        schedule["t"] = steps
        if schedule.get("after") is not None:      # a warm-up, then the named schedule on its own clock
            schedule["after"]["t"] = max(0, steps - schedule["warmup_steps"])
        hyper = dict(self.optimizer.state_dict()["hyper"], lr=self.schedule.lr_at(steps), step_count=steps)
        return {"optimizer": hyper, "schedule": schedule}


# ----- the run folder -----

def write_config(path, cfg):
    """config.json: the run's configuration, written atomically."""
    _write_text(path, json.dumps(cfg, indent=2) + "\n")


def write_metrics(path, history):
    """metrics.csv, one row per finished epoch, written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(r for r in history if "epoch" in r)
    _write_text(path, buf.getvalue())


def _write_text(path, text):
    if not mpi.is_writer():   # under mpiexec only rank 0 writes files
        return
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


def run_summary(cfg, history, out, wall_seconds, stopped=False):
    """The lines that end a run: best and final test accuracy, the best's epoch, the time, the files."""
    done = f"{len(history)} of {cfg['epochs']} epochs"
    lines = [f"{'stopped' if stopped else 'finished'}: {cfg['model']} on {cfg['data']}, {done}, "
             f"{sum(r['seconds'] for r in history):.1f} s of training steps, {wall_seconds:.1f} s in this call"]
    if history:
        best = max(history, key=lambda r: r["test_acc"])     # the first of equals, as best.npz keeps it
        final = history[-1]
        lines.append(f"  best test accuracy  {best['test_acc']:.2%} at epoch {best['epoch']}"
                     + (" (best.npz)" if out is not None else ""))
        lines.append(f"  final test accuracy {final['test_acc']:.2%} at epoch {final['epoch']}"
                     + (" (last.npz)" if out is not None else ""))
    else:
        lines.append("  no epoch finished, so no test accuracy yet")
    if out is not None and os.path.isdir(out):
        files = sorted(f for f in os.listdir(out) if not f.endswith(".tmp") and f != LOCK_NAME)
        lines.append(f"  run folder {out}: " + ", ".join(f"{f} ({_size(os.path.join(out, f))})" for f in files))
    return "\n".join(lines)


def _size(path):
    n = os.path.getsize(path)
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.1f} kB" if n >= 2**10 else f"{n} B"
