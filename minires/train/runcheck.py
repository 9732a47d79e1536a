"""Checks that come before training touches anything: the option rules, the configuration, a
checkpoint to resume, and whether the run folder can be written.

``OPTION_RULES`` is the one set of rules for the numeric options, wherever a value comes from:
the command line (cli.py builds its argparse types from them), ``fit(...)``, a checkpoint's
configuration, and its optimizer and schedule.

A checkpoint is a file from the past, perhaps edited by hand or by a stranger, or copied from
another run. Before a resumed run builds a model, loads data or writes a byte,
:func:`check_training_checkpoint` reads it (bounded, :mod:`minires.weights`) and checks every
value the loop will use -- types, ranges, known names -- reporting each problem in its own
sentence, all at once. :mod:`minires.train.resumecheck` then compares it with the run's
config.json, so a run resumes only its own checkpoint, and, once the Run is built, every
optimizer and schedule value with what the configuration gives after the steps taken.
A config that says ``data: cifar10`` cannot start a download either: a resumed run never
downloads (see :func:`minires.train.fit`).
"""
import math
import numbers
import os
import tempfile

import numpy as np

from ..backend import DEVICES
from ..data import DATASETS, data_problem
from ..files import check_folder
from ..data.folder import MAX_IMAGE_SIZE
from ..models import MODELS
from ..weights import load_checkpoint
from .optim import SCHEDULES

FORMAT = "minires-train-2"      # 2: a validation split, best.npz chosen on it (issue 27)
OLD_FORMATS = ("minires-train-1",)   # read for evaluate and predict; not resumed
DEFAULTS = dict(model="resnet20", data="digits", epochs=30, batch_size=64, lr=0.1, momentum=0.9,
                weight_decay=5e-4, schedule="cosine", warmup_epochs=0, device="cpu", dtype="float32", seed=0,
                augment=None, sync_bn=False,
                val_fraction=0.1,     # of the training set, held out to choose best.npz (data/split.py)
                image_size=None,      # a folder's images, made S x S (None: data/folder.py's default)
                world_size=1,         # recorded, not chosen: the number of processes (see data_parallel.py)
                epochs_changed=None)  # recorded: each change of length on resume (length_change, extend.py)
LIMIT = 1 << 20           # epochs and batch size: anything above is a typo or a tampered file
MAX_CONFIG_BYTES = 1 << 20  # config.json: a few hundred bytes; more is not ours
TRAIN_COLUMNS = ["epoch", "train_loss", "train_acc", "lr", "seconds", "images_per_s"]   # every row of a history
VAL_COLUMNS = ["val_loss", "val_acc"]                # ... and these, in a run with a validation set
# metrics.csv: the test set's numbers only in the chosen epoch's row, measured once at the end
COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "seconds",
           "images_per_s"]


class Rule:
    """What a numeric option may be: an int or a float, finite, from ``low`` up to ``high``.

    One set of rules for every place an option comes from -- the command line (cli.py builds
    its argparse types from these), ``fit(...)``, and a checkpoint's configuration, optimizer
    and schedule -- so a value refused in one is refused in all, with the same sentence.
    ``what`` starts the sentence ("the learning rate must be a positive number, got 0.0");
    ``why``, if given, is added when the value is above ``high``.
    """

    def __init__(self, what, kind, low, high=None, low_open=False, high_open=False, why=None):
        self.what, self.kind, self.low, self.high = what, kind, low, high
        self.low_open, self.high_open, self.why = low_open, high_open, why

    def text(self):
        """The rule in words: 'a positive integer', 'a number in [0, 1)', ..."""
        if self.kind is int:
            return "a positive integer" if self.low == 1 else f"an integer >= {self.low}"
        if self.high_open:
            return f"a number in [{self.low:g}, {self.high:g})"
        return "a positive number" if self.low_open and self.low == 0 else f"a finite number >= {self.low:g}"

    def problem(self, value):
        """None if ``value`` obeys the rule, else the sentence that says what it must be."""
        start = f"{self.what + ' ' if self.what else ''}must be {self.text()}"
        number = numbers.Integral if self.kind is int else numbers.Real
        if not isinstance(value, number) or isinstance(value, bool) or not math.isfinite(value) \
                or value < self.low or (value == self.low and self.low_open):
            return f"{start}, got {value!r:.80}"
        if self.high is not None and (value > self.high or (value == self.high and self.high_open)):
            if self.high_open:   # the range is in the text already
                return f"{start}, got {value!r:.80}"
            high = self.high if self.kind is int else f"{self.high:g}"
            return f"{start} and at most {high}{' (' + self.why + ')' if self.why else ''}, got {value!r:.80}"
        return None


OPTION_RULES = {
    "epochs": Rule("epochs", int, 1, LIMIT),
    "batch_size": Rule("batch size", int, 1, LIMIT),
    "lr": Rule("the learning rate", float, 0, 1e3, low_open=True),
    "momentum": Rule("momentum", float, 0, 1, high_open=True),
    "weight_decay": Rule("weight decay", float, 0, 1, why="every step shrinks the weights by learning rate "
                         "x weight decay; the paper's is 1e-4"),
    "warmup_epochs": Rule("warm-up epochs", int, 0, LIMIT),
    "seed": Rule("the seed", int, 0, 2 ** 63 - 1),
    "val_fraction": Rule("the validation fraction", float, 0, 0.5, why="a larger one leaves too little to train "
                         "on; 0: no validation set"),
}
IMAGE_SIZE = Rule("the image size", int, 1, MAX_IMAGE_SIZE, why="minires/data/folder.py:MAX_IMAGE_SIZE")


def int_in(value, low, high):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value <= high


def real_in(value, low, high, low_open=False):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            and (value > low if low_open else value >= low) and value <= high)


def config_problems(cfg):
    """Every problem with a training configuration (a dict), one sentence each; [] if none."""
    if not isinstance(cfg, dict):
        return [f"the configuration must be a dict of options, got {type(cfg).__name__}"]
    problems = []
    unknown = sorted(str(k) for k in set(cfg) - set(DEFAULTS))
    if unknown:
        problems.append(f"unknown training options: {', '.join(unknown)} (known: {', '.join(DEFAULTS)})")
    get = cfg.get
    if get("model") not in MODELS:
        problems.append(f"unknown model {get('model')!r:.80}; choose one of: {', '.join(MODELS)}")
    data = data_problem(get("data"))            # None for a name from DATASETS or the path of a folder
    if data:
        problems.append(data)
    problems += [p for p in (rule.problem(get(key)) for key, rule in OPTION_RULES.items()) if p]
    if get("schedule") not in SCHEDULES:
        problems.append(f"schedule must be one of {', '.join(SCHEDULES)}, got {get('schedule')!r:.80}")
    if int_in(get("warmup_epochs"), 0, LIMIT) and int_in(get("epochs"), 1, LIMIT) \
            and get("warmup_epochs") >= get("epochs"):
        problems.append(f"warmup epochs ({get('warmup_epochs')}) must be fewer than epochs ({get('epochs')})")
    if get("device") not in DEVICES:
        problems.append(f"device must be one of {DEVICES}, got {get('device')!r:.80}")
    if get("dtype") not in ("float32", "float64"):
        problems.append(f"dtype must be 'float32' or 'float64', got {get('dtype')!r:.80}")
    if get("augment") not in (None, True, False):
        problems.append(f"augment must be true, false or null, got {get('augment')!r:.80}")
    if get("sync_bn") not in (None, True, False):
        problems.append(f"sync_bn must be true or false, got {get('sync_bn')!r:.80}")
    if get("image_size") is not None:
        problems.append(IMAGE_SIZE.problem(get("image_size")) or (
            f"image_size is for a folder of your own images; {get('data')} comes at its published size"
            if get("data") in DATASETS else None))
    if get("world_size") is not None and not int_in(get("world_size"), 1, LIMIT):
        problems.append(f"world_size must be a positive integer, got {get('world_size')!r:.80}")
    changes = get("epochs_changed")
    if changes is not None and not (isinstance(changes, list) and len(changes) <= LIMIT and all(
            isinstance(c, dict) and set(c) == set(CHANGE_KEYS) and all(int_in(c[k], 0, LIMIT) for k in c)
            for c in changes)):
        problems.append(f"epochs_changed must be null or a list of changes, each with integers "
                        f"{', '.join(CHANGE_KEYS)}; got {changes!r:.80}")
    return [p for p in problems if p]


CHANGE_KEYS = ("from", "to", "at_epoch", "at_batch")


def length_change(old, new, position):
    """The record of a run's length changed from ``old`` to ``new`` epochs when resumed at ``position``
    (a checkpoint's: the epochs done, and the batch reached in the next), as config.json keeps it."""
    return dict(zip(CHANGE_KEYS, (old, new, position["epoch"], position["batch"])))


def _rng_state_problem(state):
    try:
        np.random.PCG64().state = state            # exactly what resuming will do
    except Exception as e:                         # noqa: BLE001 -- any failure is the message
        return f"position.rng is not a PCG64 generator state ({type(e).__name__}: {e})"
    return None


def position_problems(meta, cfg):
    """Problems with where the run stopped: position, history, best."""
    problems = []
    pos = meta.get("position")
    if not isinstance(pos, dict) or set(pos) - {"rngs"} != {"epoch", "batch", "rng", "stats"}:
        return [f"position must be a dict with epoch, batch, rng and stats (and rngs, from a data-parallel run), "
                f"got {pos!r:.120}"]
    epochs = cfg.get("epochs") if int_in(cfg.get("epochs"), 1, LIMIT) else LIMIT
    if not int_in(pos["epoch"], 0, epochs):
        problems.append(f"position.epoch must be an integer in [0, {epochs}], got {pos['epoch']!r:.80}")
    if not int_in(pos["batch"], 0, LIMIT):
        problems.append(f"position.batch must be an integer >= 0, got {pos['batch']!r:.80}")
    if (pos["rng"] is None) != (pos["stats"] is None):
        problems.append("position.rng and position.stats must both be set (stopped mid-epoch) or both null")
    if pos["rng"] is not None:
        problem = _rng_state_problem(pos["rng"])
        if problem:
            problems.append(problem)
    if "rngs" in pos:   # a data-parallel run: every process's generator (see minires/train/data_parallel.py)
        rngs = pos["rngs"]
        if not isinstance(rngs, list) or not 1 <= len(rngs) <= LIMIT:
            problems.append(f"position.rngs must be a list of generator states, one per process, got {rngs!r:.80}")
        else:
            problems += sorted({p for p in map(_rng_state_problem, (r for r in rngs if r is not None)) if p})
    if pos["stats"] is not None:
        stats = pos["stats"]
        want = {"loss": (0, math.inf), "correct": (0, LIMIT * LIMIT), "seen": (0, LIMIT * LIMIT),
                "seconds": (0, math.inf), "lr": (0, math.inf)}
        if not isinstance(stats, dict) or set(stats) != set(want) or not all(
                real_in(stats[k], lo, hi) if k in ("loss", "seconds", "lr") else int_in(stats[k], lo, hi)
                for k, (lo, hi) in want.items()):
            problems.append(f"position.stats must hold numbers loss, correct, seen, seconds, lr; got {stats!r:.120}")
    problems += _history_problems(meta, pos, epochs, validation=bool(cfg.get("val_fraction")))
    clock = meta.get("time", {"wall": 0.0, "calls": 1})   # the wall time of every call so far; older files lack it
    if not (isinstance(clock, dict) and set(clock) == {"wall", "calls"} and real_in(clock["wall"], 0, math.inf)
            and int_in(clock["calls"], 1, LIMIT)):
        problems.append(f"time must hold the run's wall seconds and calls so far, got {clock!r:.80}")
    for key in ("optimizer", "schedule"):
        if not isinstance(meta.get(key), dict):
            problems.append(f"{key} must be a dict (its saved state), got {type(meta.get(key)).__name__}")
    return problems


def _history_problems(meta, pos, epochs, validation):
    """Problems with the finished epochs' rows and ``best``: the best validation accuracy among them
    (0.0 in a run without a validation set, ``validation`` False)."""
    history, best = meta.get("history"), meta.get("best")
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        kind = type(history).__name__ if not isinstance(history, list) else "a list holding " + ", ".join(
            sorted({type(r).__name__ for r in history if not isinstance(r, dict)}))
        return [f"history must be a list of per-epoch dicts, got {kind}"]
    problems = []
    if int_in(pos["epoch"], 0, epochs) and len(history) != pos["epoch"]:
        problems.append(f"history has {len(history)} epochs but position.epoch says {pos['epoch']} are done")
    columns = TRAIN_COLUMNS[1:] + (VAL_COLUMNS if validation else [])
    for i, row in enumerate(history):   # the first bad row: these numbers are printed, plotted and written
        bad = [k for k in columns if not real_in(row.get(k), 0, 1 if k.endswith("_acc") else math.inf)]
        if row.get("epoch") != i + 1 or isinstance(row.get("epoch"), bool) or bad:
            key = bad[0] if bad and row.get("epoch") == i + 1 else "epoch"
            want = i + 1 if key == "epoch" else "an accuracy in [0, 1]" if key.endswith("_acc") else "a number >= 0"
            problems.append(f"history[{i}].{key} must be {want}, got {row.get(key)!r:.80}")
            break
    most = max([0.0] + [r["val_acc"] for r in history]) if validation and not problems else 0.0
    if not real_in(best, 0, 1):
        problems.append(f"best must be an accuracy in [0, 1], got {best!r:.80}")
    elif not problems and best != most:
        problems.append(f"best is {best!r}, but the best validation accuracy in history is {most!r}")
    return problems


class CheckpointError(ValueError):
    """A training checkpoint that cannot be resumed or evaluated; the message lists every problem."""


def raise_problems(path, problems):
    if len(problems) == 1:
        raise CheckpointError(f"{path}: cannot use this checkpoint: {problems[0]}")
    raise CheckpointError(f"{path}: cannot use this checkpoint ({len(problems)} problems):\n"
                          + "\n".join(f"  - {p}" for p in problems))


def check_training_checkpoint(path, resume=True):
    """Read and check a training checkpoint -> (config dict with defaults filled in, arrays, meta).

    ``resume``: also check the position, history, optimizer and schedule (``evaluate``
    needs only the configuration and the model). Raises :class:`CheckpointError` listing
    every problem, or :class:`minires.weights.WeightsError` for a file that is not a
    readable checkpoint at all; nothing is built or written.
    """
    arrays, meta = load_checkpoint(path)
    if meta.get("format") not in (FORMAT,) + OLD_FORMATS:
        raise_problems(path, [f"it is not a minires training checkpoint (format {meta.get('format')!r:.80}, "
                              f"expected {FORMAT!r})"])
    cfg = meta.get("config")
    if meta["format"] in OLD_FORMATS:
        if resume:
            raise_problems(path, [f"it was written by an older minires ({meta['format']}), before runs held out a "
                                  "validation set: it can be evaluated and used by `minires predict`, not resumed; "
                                  "start a new run"])
        if isinstance(cfg, dict):
            cfg = dict(cfg, val_fraction=cfg.get("val_fraction", 0.0))    # it had none
    problems = config_problems(cfg)
    cfg = dict(DEFAULTS, **cfg) if isinstance(cfg, dict) else {}
    if not any(k.startswith("model/") for k in arrays):
        problems.append("it holds no model weights (no 'model/...' arrays)")
    problems += [f"{k} holds values that are not finite (NaN or infinity): {n} of {a.size}" for k, a, n in
                 ((k, a, a.size - np.count_nonzero(np.isfinite(a))) for k, a in arrays.items() if a.dtype.kind == "f")
                 if n][:3]
    if resume:
        problems += position_problems(meta, cfg)
    if problems:
        raise_problems(path, problems)
    return cfg, arrays, meta


def check_writable(folder):
    """Refuse a run folder that cannot be written, before any work: probe with a temporary file
    in it (or, if it does not exist yet, in the nearest folder above it that does)."""
    check_folder(folder, NotADirectoryError, "run folder")     # 'runs/x: a file, not a run folder'
    probe = os.path.abspath(folder)
    while not os.path.isdir(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=".minires-write-check.", suffix=".tmp")
        os.close(fd)
        os.remove(name)
    except OSError as e:
        raise PermissionError(f"the run folder {folder} cannot be written ({e.strerror or e}: {probe}); "
                              "nothing was trained -- choose another --out or fix its permissions") from e
