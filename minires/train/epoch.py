"""One epoch of training: its order of the images, its steps, and its row of the history.

One step is the whole algorithm of the paper's section 3.4 (``train_step``, in five lines in
minires/train/loop.py's docstring), checked: the optimizer steps only when the loss, every
gradient and batch norm's statistics are finite (minires/train/notices.py).
"""
import time

import numpy as np

from ..backend import to_numpy
from .evaluate import evaluate
from .notices import INPUT_PROBLEM, bad_input, diverged, gradient_problem, input_problem, loss_problem, poison_gradients


def epoch_start(run, epoch, position):
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


def train_epoch(run, epoch, order, rng, start, stats, stop, progress, callback):
    """Train from batch ``start`` to the end of the epoch; the batch index to resume at if stopped, else None."""
    cfg = run.cfg
    B, steps = cfg["batch_size"], run.steps_per_epoch
    run.net.train()
    bar = progress_bar(steps, start, f"epoch {epoch + 1}/{cfg['epochs']}") if progress else None
    for b in range(start, steps):
        t0 = time.perf_counter()
        indices = order[b * B:(b + 1) * B]
        x, y = run.train_loader.make_batch(indices, rng)
        loss, correct, seen = train_step(run, x, y, indices, (epoch, b))
        if run.parallel is not None:   # the global batch's numbers, and one answer to "stop?"
            loss, correct, seen = run.parallel.reduce_step(loss, correct, seen, stop)
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
        if stop["stop"] and b + 1 < steps:
            if bar is not None:
                bar.close()
            return b + 1
    if bar is not None:
        bar.close()
    return None


def train_step(run, x, y, indices, where):
    """One SGD step on the batch (x, y) of the training images at ``indices``; this process's
    (mean loss, correct, images). The optimizer steps only when the loss, the gradients and batch
    norm's statistics are finite; otherwise TrainingDiverged names the step (``where``: epoch, batch)."""
    model = run.net                       # the model, run on every core (ThreadParallel)
    try:
        logits = model(x)
        loss = run.criterion(logits, y)
        model.zero_grad()
        model.backward(run.criterion.backward())
        problem = loss_problem(loss)
    except FloatingPointError as e:       # batch norm refused a statistic that is not finite
        problem = str(e)
    if problem is not None:               # this process's own, and why: the images as the data set numbers them
        origin = run.train_set.origin
        own = input_problem(x, indices if origin is None else origin[indices]) or problem
    else:
        own = None
    if run.parallel is not None:   # one all-reduce: every process now holds the global batch's gradient
        if problem is not None:    # ... NaN, where this one blew up: every process stops at this step
            poison_gradients(run.model.parameters())
        run.parallel.average_gradients()
    problem = problem or gradient_problem(run.model.named_parameters())
    if problem is not None:
        epoch, b = where
        stop_diverged(run, own, problem, f"step {epoch * run.steps_per_epoch + b + 1} "
                                          f"(epoch {epoch + 1}, batch {b + 1} of {run.steps_per_epoch})")
    run.optimizer.step()
    run.schedule.step()
    return float(loss), int((to_numpy(logits.argmax(axis=1)) == to_numpy(y)).sum()), len(y)


def stop_diverged(run, own, problem, step):
    """Raise the TrainingDiverged of ``step``: this process's own problem (``own``, or None), else the
    gradients' (``problem``); under mpiexec the first rank's own, on every rank."""
    if run.parallel is not None:
        own = run.parallel.first_problem(own)
    if own is not None and own.startswith(INPUT_PROBLEM):
        error = bad_input(own, step, run.saved)
    else:
        error = diverged(own or problem, step, run.optimizer.lr, run.cfg, run.saved)
    error.raised_on_every_rank = run.parallel is not None
    raise error


def epoch_row(run, epoch, stats, stop):
    """The epoch's row of the history, printed as one line: its training numbers and, in a run with a
    validation set, the validation set's (each rank its share under mpiexec). The test set waits for
    the end of the run (loop.py)."""
    row = dict(epoch=epoch + 1, train_loss=stats["loss"] / stats["seen"], train_acc=stats["correct"] / stats["seen"],
               lr=stats["lr"], seconds=stats["seconds"], images_per_s=stats["seen"] / max(stats["seconds"], 1e-9))
    line = f"epoch {row['epoch']:>3}/{run.cfg['epochs']}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%}"
    if run.val_set is not None:
        if run.parallel is None:
            val_loss, val_acc, _, _ = evaluate(run.net, run.val_loader, run.criterion)
        else:
            val_loss, val_acc = run.parallel.evaluate(run.model, run.criterion, stop)
        if not np.isfinite(val_loss):   # weights that overflowed in the epoch's last steps: nothing is saved
            stop_diverged(run, None, f"the validation loss is {val_loss}", f"the end of epoch {epoch + 1}")
        row.update(val_loss=val_loss, val_acc=val_acc)
        line += f"  val loss {val_loss:.4f} acc {val_acc:.2%}"
    print(f"{line}  lr {row['lr']:.4g}  {row['seconds']:.1f}s ({row['images_per_s']:.0f} img/s)", flush=True)
    return row


def progress_bar(total, initial, desc):
    """A tqdm bar for the epoch's steps, or None without tqdm. Off (``disable=None``) where the
    output is not a terminal: a bar redrawn into a log file is hundreds of lines of noise."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True, disable=None)
