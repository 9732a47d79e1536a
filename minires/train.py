"""The training loop: SGD on mini-batches, an evaluation per epoch, checkpoints, resume.

    from minires.train import fit
    history = fit("resnet20", "digits", epochs=30, out="runs/digits")

One step is the whole algorithm of the paper's section 3.4 in five lines:

    logits = model(x)                   # forward, caching what backward needs
    loss = criterion(logits, y)         # softmax cross-entropy, mean over the batch
    model.zero_grad()
    model.backward(criterion.backward())  # every layer's backward, in reverse
    optimizer.step(); schedule.step()   # SGD with momentum and weight decay; next lr

``minires train`` runs that model on every core: ``ThreadParallel(model)`` splits each batch
over replicas of it on threads (``minires/nn/threads.py``; ``MINIRES_NUM_THREADS=1`` turns it
off), with the same numbers to rounding.

Reproducible and resumable. Epoch e shuffles (and augments) with its own generator,
``default_rng([seed, e])``; a checkpoint stores the model, the optimizer's momentum,
the schedule, that generator's state and where in the epoch it stopped. So a run that is
interrupted (Ctrl-C finishes the current batch, saves and exits) and resumed computes
exactly what the uninterrupted run computes.

Nothing is touched before everything is checked (:mod:`minires.runcheck`): the options,
that the run folder can be written, and, when resuming, every value in the checkpoint and
its configuration. A resumed run never downloads, and the temporary files of writes that
were killed half-way are removed when the folder is used again.
"""
import contextlib
import csv
import io
import json
import math
import os
import signal
import time

import numpy as np

from . import data_parallel, distributed, nn
from .backend import check_device, to_numpy
from .data import DataLoader, load_dataset
from .models import KERAS_MODELS, get_model
from .optim import SGD, make_schedule
from .runcheck import DEFAULTS, FORMAT, CheckpointError, check_training_checkpoint, check_writable, config_problems
from .weights import atomic_write, save_checkpoint
from .weights.common import remove_stale_temporaries
COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "images_per_s"]


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

    def __init__(self, cfg, root=None, download=True):
        self.cfg = cfg
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
        # every core on one step: the batch split over replicas on threads (nn/threads.py); with
        # several processes on one machine the cores are theirs already: one thread each
        threads = None if self.parallel is None or "MINIRES_NUM_THREADS" in os.environ else 1
        self.net = nn.ThreadParallel(self.model, threads=threads)

    # ----- checkpoints -----
    def save(self, path, position, history, best):
        """Model, optimizer, schedule, the epoch's generator and the position in the run, atomically."""
        if self.parallel is not None:   # every rank's generator goes in; only rank 0 writes
            position = self.parallel.gather_position(position)
            if not distributed.is_writer():
                return
        arrays = {"model/" + k: to_numpy(v) for k, v in self.model.state_dict().items()}
        optim = self.optimizer.state_dict()
        arrays.update({f"optim/buffer{i}": b for i, b in enumerate(optim["buffers"])})
        meta = dict(config=self.cfg, position=position, history=history, best=best,
                    optimizer=optim["hyper"], schedule=self.schedule.state_dict(), format=FORMAT)
        save_checkpoint(path, arrays, meta)

    def load(self, path, checked=None):
        """Restore model, optimizer and schedule from a checkpoint; returns its metadata.

        ``checked``: the ``(cfg, arrays, meta)`` of :func:`minires.runcheck.check_training_checkpoint`
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
        self.model.load_state_dict(sd)            # all or nothing
        if "optimizer" in meta:
            try:
                self.optimizer.load_state_dict({"hyper": meta["optimizer"], "buffers": buffers})
                self.schedule.load_state_dict(meta["schedule"])
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                raise CheckpointError(f"{path}: cannot restore the optimizer and schedule: {e}") from e
        return meta


def evaluate(model, loader, criterion=None):
    """Mean loss, accuracy, and all predictions and labels over a loader (eval mode, no cache)."""
    criterion = criterion or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    total_loss, preds, labels = 0.0, [], []
    with nn.no_grad():
        for x, y in loader:
            logits = model(x)
            total_loss += float(criterion(logits, y)) * len(y)
            preds.append(to_numpy(logits.argmax(axis=1)))
            labels.append(to_numpy(y))
    model.train(was_training)
    preds, labels = np.concatenate(preds), np.concatenate(labels)
    return total_loss / len(labels), float(np.mean(preds == labels)), preds, labels


@contextlib.contextmanager
def finish_batch_on_ctrl_c():
    """While active, Ctrl-C only raises a flag (``state['stop']``); the loop ends the batch,
    saves and stops. A second Ctrl-C interrupts at once."""
    state = {"stop": False}
    if not _main_thread():
        yield state
        return

    def handler(signum, frame):
        if state["stop"]:
            raise KeyboardInterrupt
        state["stop"] = True
        print("\ninterrupted: finishing this batch, saving, then stopping (Ctrl-C again to abort)", flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def _main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()


@data_parallel.rank0_prints
def fit(model="resnet20", data="digits", out=None, resume=False, progress=True, plot=True, root=None,
        download=True, callback=None, **options):
    """Train ``model`` (a name from minires.models.MODELS) on ``data`` (a name from minires.data.DATASETS).

    ``options``: epochs, batch_size, lr, momentum, weight_decay, schedule ('cosine', 'step',
    'constant'), warmup_epochs, device, dtype, seed, augment (None: the data set's default),
    sync_bn (batch norm over all processes' images; only with more than one process).
    Under ``mpiexec -n W`` every process calls fit: batch_size is per process, the global
    batch W x batch_size; rank 0 alone prints and writes files (minires/data_parallel.py).
    ``out``: the run folder (config.json, metrics.csv, curves.png, last.npz, best.npz); with
    ``resume=True`` the run saved there continues, with the configuration saved there.
    ``callback(step, loss)``, if given, is called after every training step.
    Returns the history: a list of per-epoch dicts with the ``COLUMNS``.
    A resumed run checks its checkpoint and configuration first, never downloads, and
    refuses a folder it cannot write before training (see :mod:`minires.runcheck`).
    """
    checked = None
    if resume:
        if out is None:
            raise ValueError("resume needs the run folder (out=...) whose last.npz to continue")
        last = os.path.join(out, "last.npz")
        if not os.path.exists(last):
            raise FileNotFoundError(f"nothing to resume: {last} does not exist")
        checked = check_training_checkpoint(last)           # every problem, before anything is built
        cfg = checked[0]
        check_device(cfg["device"])
    else:
        cfg = make_config(model=model, data=data, **options)
    if out is not None:
        check_writable(out)                                 # before a whole epoch is spent
        remove_stale_temporaries(out)                       # litter of writes killed half-way
    world = distributed.get_world()
    cfg = data_parallel.configure(cfg, world, resume)   # records world_size; a resume keeps the global batch
    if world.size > 1:
        print(data_parallel.describe(cfg, world))
    run = _build_run(cfg, root, download and not resume, resume)
    history, best, position = [], 0.0, {"epoch": 0, "batch": 0, "rng": None, "stats": None}
    if out is not None:
        os.makedirs(out, exist_ok=True)
        if resume:
            meta = run.load(last, checked)
            history, best, position = meta["history"], meta["best"], meta["position"]
            if position["batch"] >= run.steps_per_epoch:
                raise CheckpointError(f"{last}: position.batch {position['batch']} is past the end of an epoch "
                                      f"({run.steps_per_epoch} batches)")
            if run.parallel is not None:
                position = run.parallel.restore_position(position)
            print(f"resuming {out} at epoch {position['epoch'] + 1}, batch {position['batch']}")
        else:
            _write_text(os.path.join(out, "config.json"), json.dumps(cfg, indent=2) + "\n")
            print(f"run folder: {out}")

    last_plot = started = time.perf_counter()
    if plot and out is not None and not _have_matplotlib():
        print("note: matplotlib is not installed, so no curves.png (pip install matplotlib)")
        plot = False
    with finish_batch_on_ctrl_c() as ctrl_c:
        if run.parallel is not None:   # with W processes, "stop" changes only where every rank agrees
            ctrl_c = run.parallel.stop_flags(ctrl_c)
        for epoch in range(position["epoch"], cfg["epochs"]):
            rng = np.random.default_rng([cfg["seed"], epoch])      # this epoch's order and augmentation
            order = rng.permutation(len(run.train_set))
            if run.parallel is not None:   # this process's shard, and its own generator for augmentation
                order, rng = run.parallel.shard(order, epoch)
            start, stats = 0, {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0, "lr": run.schedule.lr}
            if position["rng"] is not None and epoch == position["epoch"]:  # resuming mid-epoch
                start, stats = position["batch"], position["stats"]
                rng.bit_generator.state = position["rng"]          # continue the very same draws
            stopped = _train_epoch(run, epoch, order, rng, start, stats, ctrl_c, progress, callback)
            if stopped is not None:  # interrupted mid-epoch: save where we are and stop
                if out is not None:
                    position = {"epoch": epoch, "batch": stopped, "rng": rng.bit_generator.state, "stats": stats}
                    run.save(os.path.join(out, "last.npz"), position, history, best)
                    print(f"saved {os.path.join(out, 'last.npz')}; continue with: minires train --resume {out}")
                print(run_summary(cfg, history, out, time.perf_counter() - started, stopped=True))
                return history
            if run.parallel is None:
                test_loss, test_acc, _, _ = evaluate(run.net, run.test_loader, run.criterion)
            else:   # each process its share of the test set, added up
                test_loss, test_acc = run.parallel.evaluate(run.model, run.criterion, ctrl_c)
            row = dict(epoch=epoch + 1, train_loss=stats["loss"] / stats["seen"],
                       train_acc=stats["correct"] / stats["seen"], test_loss=test_loss, test_acc=test_acc,
                       lr=stats["lr"], seconds=stats["seconds"], images_per_s=stats["seen"] / max(stats["seconds"], 1e-9))
            history.append(row)
            print(f"epoch {row['epoch']:>3}/{cfg['epochs']}  train loss {row['train_loss']:.4f} "
                  f"acc {row['train_acc']:.2%}  test loss {test_loss:.4f} acc {test_acc:.2%}  lr {row['lr']:.4g}  "
                  f"{row['seconds']:.1f}s ({row['images_per_s']:.0f} img/s)", flush=True)
            if out is not None:
                position = {"epoch": epoch + 1, "batch": 0, "rng": None, "stats": None}
                if test_acc > best:
                    best = test_acc
                    run.save(os.path.join(out, "best.npz"), position, history, best)
                run.save(os.path.join(out, "last.npz"), position, history, best)
                write_metrics(os.path.join(out, "metrics.csv"), history)
                last_epoch = epoch + 1 == cfg["epochs"] or ctrl_c["stop"]
                if plot and (last_epoch or time.perf_counter() - last_plot > 30):  # drawing takes ~1 s
                    from .viz import plot_curves
                    plot_curves(history, os.path.join(out, "curves.png"), title=f"{cfg['model']} on {cfg['data']}")
                    last_plot = time.perf_counter()
            if ctrl_c["stop"]:
                print(run_summary(cfg, history, out, time.perf_counter() - started, stopped=True))
                return history
    print(run_summary(cfg, history, out, time.perf_counter() - started))
    return history


def _build_run(cfg, root, download, resume):
    """The Run; a resumed run whose data set is missing says so instead of downloading it."""
    try:
        return Run(cfg, root=root, download=download)
    except FileNotFoundError as e:
        if not resume:
            raise
        raise FileNotFoundError(f"{e} -- a resumed run never downloads (its configuration comes from a "
                                f"file); fetch the data first, e.g. python -c \"from minires.data import "
                                f"load_dataset; load_dataset('{cfg['data']}')\"") from e
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
        files = sorted(f for f in os.listdir(out) if not f.endswith(".tmp"))
        lines.append(f"  run folder {out}: " + ", ".join(f"{f} ({_size(os.path.join(out, f))})" for f in files))
    return "\n".join(lines)


def _size(path):
    n = os.path.getsize(path)
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.1f} kB" if n >= 2**10 else f"{n} B"


def _train_epoch(run, epoch, order, rng, start, stats, ctrl_c, progress, callback):
    """Train from batch ``start`` to the end of the epoch; the batch index to resume at if stopped, else None."""
    cfg, model = run.cfg, run.net     # the model, run on every core (ThreadParallel)
    B, steps = cfg["batch_size"], run.steps_per_epoch
    model.train()
    bar = _progress_bar(steps, start, f"epoch {epoch + 1}/{cfg['epochs']}") if progress else None
    for b in range(start, steps):
        t0 = time.perf_counter()
        x, y = run.train_loader.make_batch(order[b * B:(b + 1) * B], rng)
        logits = model(x)
        loss = run.criterion(logits, y)
        model.zero_grad()
        model.backward(run.criterion.backward())
        if run.parallel is not None:   # one all-reduce: every process now holds the global batch's gradient
            run.parallel.average_gradients()
        run.optimizer.step()
        run.schedule.step()
        loss, correct, seen = float(loss), int((to_numpy(logits.argmax(axis=1)) == to_numpy(y)).sum()), len(y)
        if run.parallel is not None:   # the global batch's numbers, and one answer to "stop?"
            loss, correct, seen = run.parallel.reduce_step(loss, correct, seen, ctrl_c)
        if not math.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss} at epoch {epoch + 1}, batch {b}; "
                                     f"try a smaller learning rate (now {cfg['lr']})")
        stats["seconds"] += time.perf_counter() - t0
        stats["loss"] += loss * seen
        stats["correct"] += correct
        stats["seen"] += seen
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss'] / stats['seen']:.3f}", acc=f"{stats['correct'] / stats['seen']:.1%}",
                            img_s=f"{stats['seen'] / stats['seconds']:.0f}")
        if callback is not None:
            callback(epoch * steps + b + 1, loss)
        if ctrl_c["stop"] and b + 1 < steps:
            if bar is not None:
                bar.close()
            return b + 1
    if bar is not None:
        bar.close()
    return None


def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _progress_bar(total, initial, desc):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)


def write_metrics(path, history):
    """metrics.csv, one row per finished epoch, written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(r for r in history if "epoch" in r)
    _write_text(path, buf.getvalue())


def _write_text(path, text):
    if not distributed.is_writer():   # under mpiexec only rank 0 writes files
        return
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))
