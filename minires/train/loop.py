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
interrupted (Ctrl-C or SIGTERM finishes the current batch, saves and returns) and resumed
computes exactly what the uninterrupted run computes. A resumed run may be given another
number of epochs, its schedule recomputed for it (:mod:`minires.train.extend`).

A run notices when it goes wrong (:mod:`minires.train.notices`): a step whose loss or gradients
are not finite, or whose batch norm statistics overflow, stops it before the optimizer uses
them, with the step, the learning rate and what to try; images holding NaN are refused first.

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
import os
import time
import warnings

from ..backend import check_device, to_numpy
from ..parallel import mpi
from ..parallel.threads import environment_threads
from ..viz import plot_curves
from ..weights.common import remove_stale_temporaries
from . import data_parallel
from .evaluate import evaluate
from .extend import apply_length, change_length, resume_epochs
from .lock import RunLock
from .epoch import epoch_row, epoch_start, train_epoch
from .notices import History, finish_batch_on_signals
from .run import Clock, Run, make_config, run_summary, write_config, write_metrics
from .resumecheck import check_resume_state, check_run_config
from .runcheck import CheckpointError, check_training_checkpoint, check_writable


@data_parallel.rank0_prints
def fit(model="resnet20", data="digits", out=None, resume=False, progress=True, plot=True, root=None,
        download=True, callback=None, check_inputs=True, **options):
    """Train ``model`` (a name from minires.models.MODELS) on ``data`` (a name from minires.data.DATASETS).

    ``options``: epochs, batch_size, lr, momentum, weight_decay, schedule ('cosine', 'step',
    'constant'), warmup_epochs, device, dtype, seed, augment (None: the data set's default),
    sync_bn (batch norm over all processes' images; only with more than one process).
    Under ``mpiexec -n W`` every process calls fit: batch_size is per process, the global
    batch W x batch_size; rank 0 alone prints and writes files (minires/train/data_parallel.py).
    ``out``: the run folder (config.json, metrics.csv, curves.png, last.npz, best.npz); with
    ``resume=True`` the run saved there continues, with the configuration saved there, and
    ``epochs``, if given, its new length (minires/train/extend.py; no other option).
    ``callback(step, loss)``, if given, is called after every training step.
    ``check_inputs``: refuse a data set whose images hold NaN or infinity, before training.
    Returns the history: a :class:`minires.train.notices.History`, the list of per-epoch dicts
    with the ``COLUMNS``; Ctrl-C or SIGTERM finishes the batch, saves and returns it early, its
    ``stopped_by`` naming the signal and ``exit_code`` what a program should exit with.
    A step whose loss or gradients are not finite raises ``TrainingDiverged`` before the
    optimizer uses them, leaving the run folder as the last save left it.
    A resumed run checks its checkpoint and configuration first, never downloads, and
    refuses a folder it cannot write before training (see :mod:`minires.train.runcheck`).
    A folder another run holds (its ``run.lock``) is refused (:mod:`minires.train.lock`).
    """
    clock = Clock(time.perf_counter())
    cfg, checked, new_config = data_parallel.agree_on_errors(_check_everything, model, data, out, resume, options)
    with _one_writer(out), data_parallel.blas_per_process():
        run = _build_run(cfg, root, download and not resume, resume, checked, check_inputs, clock)
        history, best, position = _start_or_resume(run, out, resume, new_config)
        return _train_epochs(run, out, history, best, position, progress, plot, callback)


def _check_everything(model, data, out, resume, options):
    """The run's config (the saved one when resuming, after checking the checkpoint and that it is
    the run's own, at the length asked for) for this world, the checked checkpoint ``(path, arrays,
    meta)`` (None for a new run) and the config.json a resumed run must write (None: as it is);
    the run folder writable."""
    checked = new_config = None
    environment_threads()                                   # MINIRES_NUM_THREADS, before anything is written
    if resume:
        cfg, checked, new_config = _check_resume(out, options)
    else:
        cfg = make_config(model=model, data=data, **options)
    if out is not None:
        check_writable(out)                                 # before a whole epoch is spent
        remove_stale_temporaries(out)                       # litter of writes killed half-way
    world = mpi.get_world()
    cfg = data_parallel.configure(cfg, world, resume)   # records world_size; a resume keeps the global batch
    if world.size > 1:
        print(data_parallel.describe(cfg, world))
    return cfg, checked, new_config


def _check_resume(out, options):
    """A resumed run's configuration, its checked checkpoint, and its new config.json (or None)."""
    if out is None:
        raise ValueError("resume needs the run folder (out=...) whose last.npz to continue")
    epochs = resume_epochs(options)                         # the only option a resumed run takes
    if os.path.exists(out) and not os.path.isdir(out):      # runs/x/best.npz given for runs/x
        folder = os.path.dirname(out) or "."
        hint = f"; did you mean --resume {folder}?" if os.path.isfile(os.path.join(folder, "last.npz")) else ""
        raise NotADirectoryError(f"{out}: a file, not a run folder (resume takes the folder that holds last.npz){hint}")
    last = os.path.join(out, "last.npz")
    if not os.path.exists(last):
        raise FileNotFoundError(f"nothing to resume: {last} does not exist")
    cfg, arrays, meta = check_training_checkpoint(last)     # every problem, before anything is built
    saved = check_run_config(out, cfg, last, meta["position"])  # ... and it is this run's checkpoint
    cfg = change_length(cfg, meta["position"], saved["epochs"] if epochs is None else epochs)
    check_device(cfg["device"])
    new_config = cfg if cfg["epochs_changed"] != saved["epochs_changed"] else None
    return cfg, (last, arrays, meta), new_config


def _one_writer(out):
    """The run folder's lock (lock.py), held by the process that writes it; nothing without a folder."""
    return RunLock(out) if out is not None and mpi.is_writer() else contextlib.nullcontext()


def _build_run(cfg, root, download, resume, checked, check_inputs, clock):
    """The Run; a resumed run whose data set is missing says so instead of downloading it."""
    try:
        return Run(cfg, root=root, download=download, checkpoint=checked, check_inputs=check_inputs, clock=clock)
    except FileNotFoundError as e:
        if not resume:
            raise
        raise FileNotFoundError(f"{e} -- a resumed run never downloads (its configuration comes from a "
                                f"file); fetch the data first, e.g. python -c \"from minires.data import "
                                f"load_dataset; load_dataset('{cfg['data']}')\"") from e


def _start_or_resume(run, out, resume, new_config):
    """(history, best validation accuracy, position): a new run's, or the saved run's, restored into ``run``
    once its optimizer and schedule are checked against the run's configuration. A new run with a
    folder writes its config.json there; so does a resumed run whose length changed (extend.py)."""
    history, best, position = [], 0.0, {"epoch": 0, "batch": 0, "rng": None, "stats": None}
    run.saved = "no checkpoint saved yet" if out is not None else "no run folder, so nothing is saved"
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
    run.clock, run.saved = Clock(run.clock.started, meta.get("time")), _saved(position)
    if run.parallel is not None:
        position = run.parallel.restore_position(position)
    print(f"resuming {out} at epoch {position['epoch'] + 1}, batch {position['batch']}")
    if run.cfg["epochs"] != meta["config"]["epochs"]:
        print(apply_length(run, meta))
    if new_config is not None:
        write_config(os.path.join(out, "config.json"), new_config)
    return history, best, position


def _saved(position):
    """What the run folder's last.npz holds, saved at ``position``, in words."""
    if position["batch"]:
        return f"last.npz holds the run at epoch {position['epoch'] + 1}, batch {position['batch']}"
    return f"last.npz holds the run after epoch {position['epoch']}"


def _train_epochs(run, out, history, best, position, progress, plot, callback):
    """Epoch after epoch from ``position`` to the last: train, validate, save, plot; then the test set
    and the summary. Returns the History; Ctrl-C or SIGTERM ends the current batch, saves and returns early."""
    cfg = run.cfg
    last_plot = time.perf_counter()
    plot = _check_plot(plot, out)
    with finish_batch_on_signals() as stop, _numbers_checked_here():
        if run.parallel is not None:   # with W processes, "stop" changes only where every rank agrees
            stop = run.parallel.stop_flags(stop)
        for epoch in range(position["epoch"], cfg["epochs"]):
            order, rng, start, stats = epoch_start(run, epoch, position)
            stopped = train_epoch(run, epoch, order, rng, start, stats, stop, progress, callback)
            if stopped is not None:  # interrupted mid-epoch: save where we are and stop
                if out is not None:
                    position = {"epoch": epoch, "batch": stopped, "rng": rng.bit_generator.state, "stats": stats}
                    run.save(os.path.join(out, "last.npz"), position, history, best)
                    print(f"saved {os.path.join(out, 'last.npz')}; continue with: minires train --resume {out}")
                return _end(run, out, history, stop, plot, unfinished_seconds=stats["seconds"])
            history.append(epoch_row(run, epoch, stats, stop))
            if out is not None:
                best = _save_epoch(run, out, epoch, history, best)
                if plot and epoch + 1 < cfg["epochs"] and time.perf_counter() - last_plot > 30:  # ~1 s to draw
                    plot_curves(history, os.path.join(out, "curves.png"), title=f"{cfg['model']} on {cfg['data']}")
                    last_plot = time.perf_counter()
            elif _is_best(run, history):                        # no best.npz: the weights kept in memory
                best, run.best_weights = history[-1]["val_acc"], _copy_weights(run.model)
            if stop["stop"]:
                return _end(run, out, history, stop, plot)
    return _end(run, out, history, stop, plot)


def _end(run, out, history, stop, plot, unfinished_seconds=0.0):
    """A finished run's test set, measured once; the summary, printed; metrics.csv and curves.png with
    the test set's numbers. Returns the History (``stopped_by`` the signal, if one stopped the run)."""
    test = None
    if not stop["stop"] and len(history) == run.cfg["epochs"]:
        test = _test_chosen(run, out, history)
    if out is not None and history:
        write_metrics(os.path.join(out, "metrics.csv"), history, test)
        if plot:
            plot_curves(history, os.path.join(out, "curves.png"), title=f"{run.cfg['model']} on {run.cfg['data']}",
                        test=test)
    print(run_summary(run.cfg, history, out, run.clock.this_call(), stopped=stop["stop"], test=test,
                      unfinished_seconds=unfinished_seconds, earlier=(run.clock.earlier, run.clock.calls)))
    return History(history, stop["signal"], test)


def chosen_epoch(history, validation):
    """The epoch whose weights a run keeps: the first with the best validation accuracy (best.npz),
    or, without a validation set, the last (last.npz)."""
    if not validation:
        return history[-1]["epoch"]
    return max(history, key=lambda r: r["val_acc"])["epoch"]    # max keeps the first of equals, as best.npz


def _is_best(run, history):
    """Whether the epoch just finished is the chosen one so far (a run with a validation set)."""
    return run.val_set is not None and chosen_epoch(history, True) == history[-1]["epoch"]


def _test_chosen(run, out, history):
    """The test set, measured once, at the end, with the weights of the chosen epoch (``chosen_epoch``):
    ``{'epoch', 'checkpoint', 'test_loss', 'test_acc'}``. Rank 0 measures; every rank gets the numbers."""
    epoch = chosen_epoch(history, run.val_set is not None)
    checkpoint = "best.npz" if run.val_set is not None else "last.npz"
    result = None
    if mpi.is_writer():
        try:
            if epoch != history[-1]["epoch"]:           # the model holds the last epoch's weights
                run.model.load_state_dict(_best_weights(run, out, epoch))
            loss, acc, _, _ = evaluate(run.net, run.test_loader, run.criterion)
            result = dict(epoch=epoch, checkpoint=checkpoint if out is not None else None, test_loss=loss,
                          test_acc=acc)
        except (OSError, ValueError) as e:             # said on every rank: none is left waiting
            result = e
    result = mpi.get_world().broadcast_object(result)
    if isinstance(result, Exception):
        result.raised_on_every_rank = run.parallel is not None
        raise result
    return result


def _best_weights(run, out, epoch):
    """The state_dict of the run's best epoch: best.npz's, checked (it must be that epoch's), or,
    without a run folder, the copy kept in memory."""
    if out is None:
        return run.best_weights
    path = os.path.join(out, "best.npz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: the test set is measured with the best epoch's weights "
                                f"(epoch {epoch}); put it back, or resume with more epochs to make a new one")
    _, arrays, meta = check_training_checkpoint(path, resume=False)
    if meta.get("position", {}).get("epoch") != epoch:
        raise CheckpointError(f"{path} holds the run after epoch {meta.get('position', {}).get('epoch')!r:.20}, "
                              f"but the best validation accuracy in its history is epoch {epoch}'s")
    return {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}


def _copy_weights(model):
    """The model's state_dict, copied to host memory."""
    return {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


@contextlib.contextmanager
def _numbers_checked_here():
    """NumPy's warnings of overflow and NaN ("RuntimeWarning: overflow encountered in matmul") held
    back: every step checks its numbers itself and says what blew up, where, and what to try."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero) encountered", RuntimeWarning)
        yield


def _save_epoch(run, out, epoch, history, best):
    """After a finished epoch: best.npz if the validation accuracy is the best yet, last.npz,
    metrics.csv. Returns the best validation accuracy (0.0 without a validation set: no best.npz)."""
    position = {"epoch": epoch + 1, "batch": 0, "rng": None, "stats": None}
    if _is_best(run, history):
        best = history[-1]["val_acc"]
        run.save(os.path.join(out, "best.npz"), position, history, best)
    run.save(os.path.join(out, "last.npz"), position, history, best)
    run.saved = _saved(position)
    write_metrics(os.path.join(out, "metrics.csv"), history)
    return best


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
