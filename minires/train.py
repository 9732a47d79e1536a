"""The training loop: SGD on mini-batches, an evaluation per epoch, checkpoints, resume.

    from minires.train import fit
    history = fit("resnet20", "digits", epochs=30, out="runs/digits")

One step is the whole algorithm of the paper's section 3.4 in five lines:

    logits = model(x)                   # forward, caching what backward needs
    loss = criterion(logits, y)         # softmax cross-entropy, mean over the batch
    model.zero_grad()
    model.backward(criterion.backward())  # every layer's backward, in reverse
    optimizer.step(); schedule.step()   # SGD with momentum and weight decay; next lr

Reproducible and resumable. Epoch e shuffles (and augments) with its own generator,
``default_rng([seed, e])``; a checkpoint stores the model, the optimizer's momentum,
the schedule, that generator's state and where in the epoch it stopped. So a run that is
interrupted (Ctrl-C finishes the current batch, saves and exits) and resumed computes
exactly what the uninterrupted run computes.
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

from . import nn
from .backend import check_device, to_numpy
from .data import DataLoader, load_dataset
from .models import KERAS_MODELS, get_model
from .optim import SGD, make_schedule
from .weights import atomic_write, load_checkpoint, save_checkpoint

DEFAULTS = dict(model="resnet20", data="digits", epochs=30, batch_size=64, lr=0.1, momentum=0.9,
                weight_decay=5e-4, schedule="cosine", warmup_epochs=0, device="cpu", dtype="float32", seed=0,
                augment=None)
COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "images_per_s"]


def make_config(**options):
    """Defaults updated with ``options`` (None means 'the default'), validated, as a plain dict."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown training options: {', '.join(sorted(unknown))}")
    cfg = dict(DEFAULTS, **{k: v for k, v in options.items() if v is not None})
    for key in ("epochs", "batch_size"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(f"{key.replace('_', ' ')} must be a positive integer, got {cfg[key]!r}")
    if not (isinstance(cfg["lr"], (int, float)) and math.isfinite(cfg["lr"]) and cfg["lr"] > 0):
        raise ValueError(f"the learning rate must be a positive number, got {cfg['lr']!r}")
    if cfg["dtype"] not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {cfg['dtype']!r}")
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
        # drop_last: a last batch of one image would leave batch norm a single value per channel
        self.steps_per_epoch = len(self.train_set) // cfg["batch_size"] or 1
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

    # ----- checkpoints -----
    def save(self, path, position, history, best):
        """Model, optimizer, schedule, the epoch's generator and the position in the run, atomically."""
        arrays = {"model/" + k: to_numpy(v) for k, v in self.model.state_dict().items()}
        optim = self.optimizer.state_dict()
        arrays.update({f"optim/buffer{i}": b for i, b in enumerate(optim["buffers"])})
        meta = dict(config=self.cfg, position=position, history=history, best=best,
                    optimizer=optim["hyper"], schedule=self.schedule.state_dict(), format="minires-train-1")
        save_checkpoint(path, arrays, meta)

    def load(self, path):
        arrays, meta = load_checkpoint(path)
        if meta.get("format") != "minires-train-1":
            raise ValueError(f"{path} is not a minires training checkpoint")
        if meta["config"]["model"] != self.cfg["model"]:
            raise ValueError(f"{path} holds a {meta['config']['model']}, not a {self.cfg['model']}")
        self.model.load_state_dict({k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")})
        buffers = [arrays[f"optim/buffer{i}"] for i in range(len([k for k in arrays if k.startswith("optim/")]))]
        self.optimizer.load_state_dict({"hyper": meta["optimizer"], "buffers": buffers})
        self.schedule.load_state_dict(meta["schedule"])
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


def fit(model="resnet20", data="digits", out=None, resume=False, progress=True, plot=True, root=None,
        download=True, callback=None, **options):
    """Train ``model`` (a name from minires.models.MODELS) on ``data`` (a name from minires.data.DATASETS).

    ``options``: epochs, batch_size, lr, momentum, weight_decay, schedule ('cosine', 'step',
    'constant'), warmup_epochs, device, dtype, seed, augment (None: the data set's default).
    ``out``: the run folder (config.json, metrics.csv, curves.png, last.npz, best.npz); with
    ``resume=True`` the run saved there continues, with the configuration saved there.
    ``callback(step, loss)``, if given, is called after every training step.
    Returns the history: a list of per-epoch dicts with the ``COLUMNS``.
    """
    if resume:
        if out is None:
            raise ValueError("resume needs the run folder (out=...) whose last.npz to continue")
        last = os.path.join(out, "last.npz")
        if not os.path.exists(last):
            raise FileNotFoundError(f"nothing to resume: {last} does not exist")
        cfg = load_checkpoint(last)[1]["config"]
    else:
        cfg = make_config(model=model, data=data, **options)
    run = Run(cfg, root=root, download=download)
    history, best, position = [], 0.0, {"epoch": 0, "batch": 0, "rng": None, "stats": None}
    if out is not None:
        os.makedirs(out, exist_ok=True)
        if resume:
            meta = run.load(os.path.join(out, "last.npz"))
            history, best, position = meta["history"], meta["best"], meta["position"]
            print(f"resuming {out} at epoch {position['epoch'] + 1}, batch {position['batch']}")
        else:
            _write_text(os.path.join(out, "config.json"), json.dumps(cfg, indent=2) + "\n")
            print(f"run folder: {out}")

    last_plot = time.perf_counter()
    if plot and out is not None and not _have_matplotlib():
        print("note: matplotlib is not installed, so no curves.png (pip install minires[plots])")
        plot = False
    with finish_batch_on_ctrl_c() as ctrl_c:
        for epoch in range(position["epoch"], cfg["epochs"]):
            rng = np.random.default_rng([cfg["seed"], epoch])      # this epoch's order and augmentation
            order = rng.permutation(len(run.train_set))
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
                return history
            test_loss, test_acc, _, _ = evaluate(run.model, run.test_loader, run.criterion)
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
                return history
    return history


def _train_epoch(run, epoch, order, rng, start, stats, ctrl_c, progress, callback):
    """Train from batch ``start`` to the end of the epoch; the batch index to resume at if stopped, else None."""
    cfg, model = run.cfg, run.model
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
        run.optimizer.step()
        run.schedule.step()
        loss = float(loss)
        if not math.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss} at epoch {epoch + 1}, batch {b}; "
                                     f"try a smaller learning rate (now {cfg['lr']})")
        stats["seconds"] += time.perf_counter() - t0
        stats["loss"] += loss * len(y)
        stats["correct"] += int((to_numpy(logits.argmax(axis=1)) == to_numpy(y)).sum())
        stats["seen"] += len(y)
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
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))
