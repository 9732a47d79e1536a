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
over replicas of it on threads (``minires/parallel/threads.py``; ``MINIRES_NUM_THREADS=1`` turns it
off), with the same numbers to rounding.

Reproducible and resumable. Epoch e shuffles (and augments) with its own generator,
``default_rng([seed, e])``; a checkpoint stores the model, the optimizer's momentum,
the schedule, that generator's state and where in the epoch it stopped. So a run that is
interrupted (Ctrl-C finishes the current batch, saves and exits) and resumed computes
exactly what the uninterrupted run computes.

Nothing is touched before everything is checked (:mod:`minires.train.runcheck`): the options,
that the run folder can be written, and, when resuming, every value in the checkpoint and
its configuration, that it is the run's own (config.json), and that its optimizer and schedule
are what that configuration gives. A resumed run never downloads, and the temporary files of
writes that were killed half-way are removed when the folder is used again. One run writes a
run folder at a time: it holds ``run.lock`` while it runs (:mod:`minires.train.lock`).

What a run is built of and the files it writes are in :mod:`minires.train.run`; the test-set
evaluation after every epoch is :func:`minires.train.evaluate.evaluate`.
"""
import contextlib
import math
import os
import signal
import threading
import time

import numpy as np

from ..backend import check_device, to_numpy
from ..parallel import mpi
from ..parallel.threads import environment_threads
from ..viz import plot_curves
from ..weights.common import remove_stale_temporaries
from . import data_parallel
from .evaluate import evaluate
from .lock import RunLock
from .run import Run, make_config, run_summary, write_config, write_metrics
from .runcheck import check_resume_state, check_run_config, check_training_checkpoint, check_writable


@data_parallel.rank0_prints
def fit(model="resnet20", data="digits", out=None, resume=False, progress=True, plot=True, root=None,
        download=True, callback=None, **options):
    """Train ``model`` (a name from minires.models.MODELS) on ``data`` (a name from minires.data.DATASETS).

    ``options``: epochs, batch_size, lr, momentum, weight_decay, schedule ('cosine', 'step',
    'constant'), warmup_epochs, device, dtype, seed, augment (None: the data set's default),
    sync_bn (batch norm over all processes' images; only with more than one process).
    Under ``mpiexec -n W`` every process calls fit: batch_size is per process, the global
    batch W x batch_size; rank 0 alone prints and writes files (minires/train/data_parallel.py).
    ``out``: the run folder (config.json, metrics.csv, curves.png, last.npz, best.npz); with
    ``resume=True`` the run saved there continues, with the configuration saved there.
    ``callback(step, loss)``, if given, is called after every training step.
    Returns the history: a list of per-epoch dicts with the ``COLUMNS``.
    A resumed run checks its checkpoint and configuration first, never downloads, and
    refuses a folder it cannot write before training (see :mod:`minires.train.runcheck`).
    A folder another run holds (its ``run.lock``) is refused (:mod:`minires.train.lock`).
    """
    cfg, checked = _check_everything(model, data, out, resume, options)   # before anything is built
    with _one_writer(out), data_parallel.blas_per_process():
        run = _build_run(cfg, root, download and not resume, resume, checked)
        history, best, position = _start_or_resume(run, out, resume)
        return _train_epochs(run, out, history, best, position, progress, plot, callback)


def _check_everything(model, data, out, resume, options):
    """The run's config (the saved one when resuming, after checking the checkpoint and that it is
    the run's own) for this world, and the checked checkpoint ``(path, arrays, meta)`` (None for a
    new run); the run folder writable."""
    checked = None
    environment_threads()                                   # MINIRES_NUM_THREADS, before anything is written
    if resume:
        if out is None:
            raise ValueError("resume needs the run folder (out=...) whose last.npz to continue")
        last = os.path.join(out, "last.npz")
        if not os.path.exists(last):
            raise FileNotFoundError(f"nothing to resume: {last} does not exist")
        cfg, arrays, meta = check_training_checkpoint(last)   # every problem, before anything is built
        check_run_config(out, cfg, last)                      # ... and it is this run's checkpoint
        check_device(cfg["device"])
        checked = (last, arrays, meta)
    else:
        cfg = make_config(model=model, data=data, **options)
    if out is not None:
        check_writable(out)                                 # before a whole epoch is spent
        remove_stale_temporaries(out)                       # litter of writes killed half-way
    world = mpi.get_world()
    cfg = data_parallel.configure(cfg, world, resume)   # records world_size; a resume keeps the global batch
    if world.size > 1:
        print(data_parallel.describe(cfg, world))
    return cfg, checked


def _one_writer(out):
    """The run folder's lock (lock.py), held by the process that writes it; nothing without a folder."""
    return RunLock(out) if out is not None and mpi.is_writer() else contextlib.nullcontext()


def _build_run(cfg, root, download, resume, checked):
    """The Run; a resumed run whose data set is missing says so instead of downloading it."""
    try:
        return Run(cfg, root=root, download=download, checkpoint=checked)
    except FileNotFoundError as e:
        if not resume:
            raise
        raise FileNotFoundError(f"{e} -- a resumed run never downloads (its configuration comes from a "
                                f"file); fetch the data first, e.g. python -c \"from minires.data import "
                                f"load_dataset; load_dataset('{cfg['data']}')\"") from e


def _start_or_resume(run, out, resume):
    """(history, best test accuracy, position): a new run's, or the saved run's, restored into ``run``
    once its optimizer and schedule are checked against the run's configuration. A new run with a
    folder writes its config.json there."""
    history, best, position = [], 0.0, {"epoch": 0, "batch": 0, "rng": None, "stats": None}
    if out is None:
        return history, best, position
    if not resume:
        write_config(os.path.join(out, "config.json"), run.cfg)
        print(f"run folder: {out}")
        return history, best, position
    last, arrays, meta = run.checkpoint
    check_resume_state(last, meta, run)                  # before the Run changes
    meta = run.load(last, (meta["config"], arrays, meta))
    history, best, position = meta["history"], meta["best"], meta["position"]
    if run.parallel is not None:
        position = run.parallel.restore_position(position)
    print(f"resuming {out} at epoch {position['epoch'] + 1}, batch {position['batch']}")
    return history, best, position


def _train_epochs(run, out, history, best, position, progress, plot, callback):
    """Epoch after epoch from ``position`` to the last: train, test, save, plot; then the summary.
    Returns the history; Ctrl-C ends the current batch, saves and returns early."""
    cfg = run.cfg
    last_plot = started = time.perf_counter()
    plot = _check_plot(plot, out)
    with finish_batch_on_ctrl_c() as ctrl_c:
        if run.parallel is not None:   # with W processes, "stop" changes only where every rank agrees
            ctrl_c = run.parallel.stop_flags(ctrl_c)
        for epoch in range(position["epoch"], cfg["epochs"]):
            order, rng, start, stats = _epoch_start(run, epoch, position)
            stopped = _train_epoch(run, epoch, order, rng, start, stats, ctrl_c, progress, callback)
            if stopped is not None:  # interrupted mid-epoch: save where we are and stop
                if out is not None:
                    position = {"epoch": epoch, "batch": stopped, "rng": rng.bit_generator.state, "stats": stats}
                    run.save(os.path.join(out, "last.npz"), position, history, best)
                    print(f"saved {os.path.join(out, 'last.npz')}; continue with: minires train --resume {out}")
                print(run_summary(cfg, history, out, time.perf_counter() - started, stopped=True))
                return history
            history.append(_test_epoch(run, epoch, stats, ctrl_c))
            if out is not None:
                best = _save_epoch(run, out, epoch, history, best)
                last_epoch = epoch + 1 == cfg["epochs"] or ctrl_c["stop"]
                if plot and (last_epoch or time.perf_counter() - last_plot > 30):  # drawing takes ~1 s
                    plot_curves(history, os.path.join(out, "curves.png"), title=f"{cfg['model']} on {cfg['data']}")
                    last_plot = time.perf_counter()
            if ctrl_c["stop"]:
                print(run_summary(cfg, history, out, time.perf_counter() - started, stopped=True))
                return history
    print(run_summary(cfg, history, out, time.perf_counter() - started))
    return history


def _epoch_start(run, epoch, position):
    """This epoch's order of the training set, its generator, the batch to start at and the running
    numbers: fresh, or where a resumed run stopped in the middle of this epoch."""
    cfg = run.cfg
    rng = np.random.default_rng([cfg["seed"], epoch])      # this epoch's order and augmentation
    order = rng.permutation(len(run.train_set))
    if run.parallel is not None:   # this process's shard, and its own generator for augmentation
        order, rng = run.parallel.shard(order, epoch)
    start, stats = 0, {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0, "lr": run.schedule.lr}
    if position["rng"] is not None and epoch == position["epoch"]:  # resuming mid-epoch
        start, stats = position["batch"], position["stats"]
        rng.bit_generator.state = position["rng"]          # continue the very same draws
    return order, rng, start, stats


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


def _test_epoch(run, epoch, stats, ctrl_c):
    """The epoch's row of the history: its training numbers and the test set's, printed as one line."""
    if run.parallel is None:
        test_loss, test_acc, _, _ = evaluate(run.net, run.test_loader, run.criterion)
    else:   # each process its share of the test set, added up
        test_loss, test_acc = run.parallel.evaluate(run.model, run.criterion, ctrl_c)
    row = dict(epoch=epoch + 1, train_loss=stats["loss"] / stats["seen"],
               train_acc=stats["correct"] / stats["seen"], test_loss=test_loss, test_acc=test_acc,
               lr=stats["lr"], seconds=stats["seconds"], images_per_s=stats["seen"] / max(stats["seconds"], 1e-9))
    print(f"epoch {row['epoch']:>3}/{run.cfg['epochs']}  train loss {row['train_loss']:.4f} "
          f"acc {row['train_acc']:.2%}  test loss {test_loss:.4f} acc {test_acc:.2%}  lr {row['lr']:.4g}  "
          f"{row['seconds']:.1f}s ({row['images_per_s']:.0f} img/s)", flush=True)
    return row


def _save_epoch(run, out, epoch, history, best):
    """After a finished epoch: best.npz if the test accuracy is the best yet, last.npz, metrics.csv.
    Returns the best test accuracy."""
    position = {"epoch": epoch + 1, "batch": 0, "rng": None, "stats": None}
    test_acc = history[-1]["test_acc"]
    if test_acc > best:
        best = test_acc
        run.save(os.path.join(out, "best.npz"), position, history, best)
    run.save(os.path.join(out, "last.npz"), position, history, best)
    write_metrics(os.path.join(out, "metrics.csv"), history)
    return best


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
    return threading.current_thread() is threading.main_thread()


def _check_plot(plot, out):
    """``plot``, or False, with a note, where there is a run folder but no matplotlib to draw curves.png."""
    if plot and out is not None and not _have_matplotlib():
        print("note: matplotlib is not installed, so no curves.png (pip install matplotlib)")
        return False
    return plot


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
