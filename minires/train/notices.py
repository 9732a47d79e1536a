"""What a training run notices, and how it stops: a signal from outside, a step that blew up,
images that are not numbers.

Signals. Ctrl-C (SIGINT) and SIGTERM -- what ``kill``, SLURM and Kubernetes send before they
kill a job -- only raise a flag (``finish_batch_on_signals``); fit finishes the batch, saves
last.npz and returns the history so far, a :class:`History` whose ``stopped_by`` names the
signal and whose ``exit_code`` is the shell's for it (130 after Ctrl-C, 143 after SIGTERM).
A second signal ends the run at once (KeyboardInterrupt). Under mpiexec the ranks agree on
the stop (minires/train/data_parallel.py), so every rank stops at the same batch.

Divergence. Too high a learning rate makes the weights, and with them the activations, grow
step after step until they overflow; a NaN in an input spreads through batch norm to every
image of its batch. Left alone, such a run goes on to the end and saves checkpoints full of
NaN. So before the optimizer uses a step, the loss and every gradient must be finite
(``gradient_problem``: one sum per parameter's gradient, which is NaN or infinite exactly when an
entry is, or when they are so large that their sum overflows), and batch norm refuses to store
a running statistic that is not finite (minires/nn/norm.py:BatchNorm2d.update_running). Either
stops the run with :class:`TrainingDiverged`, which names the step, the learning rate and
what to try; the run folder keeps what the last save left (last.npz of the last finished epoch).

Inputs. ``check_finite_images`` looks at a data set's images once, before training: uint8
images cannot hold NaN, float32 ones are scanned in chunks.
"""
import contextlib
import math
import signal
import threading

import numpy as np

from ..backend import to_numpy, xp_of

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class History(list):
    """fit's result: the per-epoch rows (dicts); ``stopped_by``: None when the run ran to its end,
    else the name of the signal that stopped it ('SIGINT' for Ctrl-C, 'SIGTERM'); ``test``: the test
    set's numbers, measured once at the end of a finished run for the chosen epoch --
    ``{'epoch', 'checkpoint', 'test_loss', 'test_acc'}`` -- or None (a run that was stopped)."""

    def __init__(self, rows=(), stopped_by=None, test=None):
        super().__init__(rows)
        self.stopped_by, self.test = stopped_by, test

    @property
    def exit_code(self):
        """What a program should exit with: 0, or 128 + the signal's number, as the shell reports a
        process that signal ended (130 for Ctrl-C, 143 for SIGTERM)."""
        return 0 if self.stopped_by is None else 128 + signal.Signals[self.stopped_by].value


class TrainingDiverged(FloatingPointError):
    """A step whose loss or gradients, or a batch norm's statistics, are not finite: the run stops
    before the optimizer uses them. ``raised_on_every_rank``: under mpiexec, every rank raised it."""


@contextlib.contextmanager
def finish_batch_on_signals():
    """While active, Ctrl-C (SIGINT) or SIGTERM only sets ``state['stop']`` (and ``state['signal']``
    to its name); the loop ends the batch, saves and stops. A second signal interrupts at once.
    Outside the main thread (where Python delivers signals) nothing is installed."""
    state = {"stop": False, "signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state["stop"]:
            raise KeyboardInterrupt
        state.update(stop=True, signal=signal.Signals(signum).name)
        what = "interrupted" if signum == signal.SIGINT else "SIGTERM"
        print(f"\n{what}: finishing this batch, saving, then stopping (Ctrl-C again to abort)", flush=True)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield state
    finally:
        for s, before in previous.items():
            signal.signal(s, signal.SIG_DFL if before is None else before)


# ----- divergence -----

def loss_problem(loss):
    """None if the loss is finite, else a sentence saying what it is."""
    loss = float(loss)
    return None if math.isfinite(loss) else f"the loss is {loss}"


def gradient_problem(named_parameters):
    """None if every gradient is finite, else a sentence naming the first parameter whose is not.

    One sum per parameter and one number brought back from the device: a sum is NaN or
    infinite when an entry is (or when finite entries are so large that it overflows: a
    blow-up too). Only when it is not finite are the parameters searched, one by one."""
    named_parameters = list(named_parameters)
    total = float(sum(p.grad.sum() for _, p in named_parameters))
    if math.isfinite(total):
        return None
    for name, p in named_parameters:
        g = to_numpy(p.grad)
        bad = g[~np.isfinite(g)]
        if bad.size:
            return f"the gradient of {name} is {_values(bad)} in {bad.size} of {g.size} values"
    return f"the gradients are so large that their sum overflows to {total}"


def poison_gradients(parameters):
    """Every gradient set to NaN: under mpiexec, a rank whose step blew up before its gradients
    were made still joins the all-reduce, and the NaN in the average stops every rank there."""
    for p in parameters:
        p.grad[...] = math.nan


def diverged(problem, step, lr, cfg, saved):
    """The TrainingDiverged for ``problem`` at ``step`` ('step 10 (epoch 1, batch 10 of 28)') with
    learning rate ``lr``; ``saved``: what the run folder holds from before it."""
    if cfg["warmup_epochs"]:
        warm = f"a longer warm-up (--warmup-epochs {2 * cfg['warmup_epochs']}; now {cfg['warmup_epochs']})"
    else:
        warm = "a warm-up (--warmup-epochs 2)"
    return TrainingDiverged(f"training diverged at {step}, learning rate {lr:.4g}: {problem}; nothing of it was "
                            f"saved ({saved}); try a smaller learning rate (--lr {cfg['lr'] / 10:.4g}, a tenth of "
                            f"{cfg['lr']:.4g}) or {warm}")


def bad_input(problem, step, saved):
    """The TrainingDiverged for a step whose batch held NaN or infinity (``problem``, from
    ``input_problem``): the data, not the learning rate, is to blame."""
    return TrainingDiverged(f"training stopped at {step}: {problem}; nothing of it was saved ({saved}); fix the "
                            "data (check_inputs=True, the default, refuses such a data set before training)")


def input_problem(x, indices):
    """A sentence if the batch ``x`` (of the training images at ``indices``) holds NaN or infinity,
    else None: why a step blew up when the data set was not checked (check_inputs=False)."""
    finite = to_numpy(xp_of(x).isfinite(x).reshape(len(x), -1).all(axis=1))
    if finite.all():
        return None
    bad = np.asarray(indices)[~finite]
    return f"{INPUT_PROBLEM} in training image{'s' * (len(bad) > 1)} {_first(bad)}"


INPUT_PROBLEM = "the batch holds values that are not finite (NaN or infinity)"


# ----- inputs -----

CHUNK_VALUES = 1 << 24      # values scanned at once: a 16 MB temporary of booleans


def check_finite_images(dataset, what):
    """Refuse a data set whose images hold NaN or infinity (ValueError naming the first ones);
    ``what``: 'training set' or 'test set'. uint8 images cannot: nothing to scan."""
    images = dataset.images
    if images.dtype.kind != "f" or len(images) == 0:
        return
    flat = images.reshape(len(images), -1)
    rows = max(1, CHUNK_VALUES // flat.shape[1])
    bad = np.concatenate([np.flatnonzero(~np.isfinite(flat[i:i + rows]).all(axis=1)) + i
                          for i in range(0, len(flat), rows)])
    if bad.size:
        name = f"{dataset.name} {what}" if dataset.name else what
        raise ValueError(f"the {name} holds values that are not finite (NaN or infinity) in {bad.size} of "
                         f"{len(images)} images: {_first(bad)}; in training one would spread through batch "
                         "norm to every image of its batch and stop the run. Fix the data")


def _first(indices, n=5):
    """'3, 17 and 40', or '3, 17, 40, 41, 52 and 7 more'."""
    shown = [str(int(i)) for i in indices[:n]]
    if len(indices) > n:
        return ", ".join(shown) + f" and {len(indices) - n} more"
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _values(bad):
    """'nan', 'inf or nan': the distinct values of an array of NaN and infinities."""
    return " or ".join(sorted(set(map(str, bad.tolist()))))
