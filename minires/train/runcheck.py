"""Checks that come before training touches anything: the option rules, the configuration, a
checkpoint to resume, and whether the run folder can be written.

``OPTION_RULES`` is the one set of rules for the numeric options, wherever a value comes from:
the command line (cli.py builds its argparse types from them), ``fit(...)``, a checkpoint's
configuration, and its optimizer and schedule.

A checkpoint is a file from the past, perhaps edited by hand or by a stranger, or copied from
another run. Before a resumed run builds a model, loads data or writes a byte,
:func:`check_training_checkpoint` reads it (bounded, :mod:`minires.weights`) and checks every
value the loop will use -- types, ranges, known names -- reporting each problem in its own
sentence, all at once; :func:`check_run_config` compares it with the run's config.json, so a
run resumes only its own checkpoint. Once the Run is built, :func:`check_resume_state` compares
every optimizer and schedule value with what the configuration gives after the steps taken.
A config that says ``data: cifar10`` cannot start a download either: a resumed run never
downloads (see :func:`minires.train.fit`).
"""
import json
import math
import numbers
import os
import tempfile

import numpy as np

from ..backend import DEVICES
from ..data import data_problem
from ..models import MODELS
from ..weights import load_checkpoint
from .optim import SCHEDULES

FORMAT = "minires-train-1"
DEFAULTS = dict(model="resnet20", data="digits", epochs=30, batch_size=64, lr=0.1, momentum=0.9,
                weight_decay=5e-4, schedule="cosine", warmup_epochs=0, device="cpu", dtype="float32", seed=0,
                augment=None, sync_bn=False,
                world_size=1)  # world_size: recorded, not chosen -- the number of processes (see distributed.py)
LIMIT = 1 << 20           # epochs and batch size: anything above is a typo or a tampered file
MAX_CONFIG_BYTES = 1 << 20  # config.json: a few hundred bytes; more is not ours
COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "images_per_s"]  # history


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
}


def _int_in(value, low, high):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value <= high


def _real_in(value, low, high, low_open=False):
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
    if _int_in(get("warmup_epochs"), 0, LIMIT) and _int_in(get("epochs"), 1, LIMIT) \
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
    if get("world_size") is not None and not _int_in(get("world_size"), 1, LIMIT):
        problems.append(f"world_size must be a positive integer, got {get('world_size')!r:.80}")
    return problems


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
    epochs = cfg.get("epochs") if _int_in(cfg.get("epochs"), 1, LIMIT) else LIMIT
    if not _int_in(pos["epoch"], 0, epochs):
        problems.append(f"position.epoch must be an integer in [0, {epochs}], got {pos['epoch']!r:.80}")
    if not _int_in(pos["batch"], 0, LIMIT):
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
                _real_in(stats[k], lo, hi) if k in ("loss", "seconds", "lr") else _int_in(stats[k], lo, hi)
                for k, (lo, hi) in want.items()):
            problems.append(f"position.stats must hold numbers loss, correct, seen, seconds, lr; got {stats!r:.120}")
    problems += _history_problems(meta, pos, epochs)
    for key in ("optimizer", "schedule"):
        if not isinstance(meta.get(key), dict):
            problems.append(f"{key} must be a dict (its saved state), got {type(meta.get(key)).__name__}")
    return problems


def _history_problems(meta, pos, epochs):
    """Problems with the finished epochs' rows and the best test accuracy among them."""
    history, best = meta.get("history"), meta.get("best")
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        kind = type(history).__name__ if not isinstance(history, list) else "a list holding " + ", ".join(
            sorted({type(r).__name__ for r in history if not isinstance(r, dict)}))
        return [f"history must be a list of per-epoch dicts, got {kind}"]
    problems = []
    if _int_in(pos["epoch"], 0, epochs) and len(history) != pos["epoch"]:
        problems.append(f"history has {len(history)} epochs but position.epoch says {pos['epoch']} are done")
    for i, row in enumerate(history):   # the first bad row: these numbers are printed, plotted and written
        bad = [k for k in COLUMNS[1:] if not _real_in(row.get(k), 0, 1 if k.endswith("_acc") else math.inf)]
        if row.get("epoch") != i + 1 or isinstance(row.get("epoch"), bool) or bad:
            key = bad[0] if bad and row.get("epoch") == i + 1 else "epoch"
            want = i + 1 if key == "epoch" else "an accuracy in [0, 1]" if key.endswith("_acc") else "a number >= 0"
            problems.append(f"history[{i}].{key} must be {want}, got {row.get(key)!r:.80}")
            break
    if not _real_in(best, 0, 1):
        problems.append(f"best must be an accuracy in [0, 1], got {best!r:.80}")
    elif not problems and best != max([0.0] + [r["test_acc"] for r in history]):
        problems.append(f"best is {best!r}, but the best test accuracy in history is "
                        f"{max([0.0] + [r['test_acc'] for r in history])!r}")
    return problems


class CheckpointError(ValueError):
    """A training checkpoint that cannot be resumed or evaluated; the message lists every problem."""


def _raise(path, problems):
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
    if meta.get("format") != FORMAT:
        _raise(path, [f"it is not a minires training checkpoint (format {meta.get('format')!r:.80}, "
                      f"expected {FORMAT!r})"])
    cfg = meta.get("config")
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
        _raise(path, problems)
    return cfg, arrays, meta


# ----- resuming: is this checkpoint the run's own, and is its state what the run's configuration gives?

class _Missing:
    """A value absent from a dict, in a message: 'nothing'."""

    def __repr__(self):
        return "nothing"


_MISSING = _Missing()

def check_run_config(folder, cfg, checkpoint):
    """Refuse a checkpoint that is not the run's own: ``folder``/config.json, written when the run
    began, must give the checkpoint's configuration ``cfg`` (the global batch, batch size x
    processes, may be split over another number of processes). Missing, unreadable or different,
    it is one sentence naming both files."""
    path = os.path.join(folder, "config.json")
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_CONFIG_BYTES + 1)
        if len(text) > MAX_CONFIG_BYTES:
            raise ValueError(f"over {MAX_CONFIG_BYTES} bytes")
        saved = json.loads(text)
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing, so nothing says that {checkpoint} belongs to this run; "
                              "put the run's config.json back, or start a new run") from None
    except (OSError, ValueError) as e:   # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CheckpointError(f"{path} cannot be read as the run's configuration ({e}); "
                              f"restore it to resume {checkpoint}") from None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path} must hold a JSON object of options, got {saved!r:.80}")
    theirs, mine = _agreeing(dict(DEFAULTS, **saved)), _agreeing(cfg)
    differ = [k for k in dict(theirs, **mine) if not _same(theirs.get(k, _MISSING), mine.get(k, _MISSING))]
    if differ:
        def say(c):
            return ", ".join(f"{k} {c.get(k, _MISSING)!r:.40}" for k in differ[:4]) + (" ..." if differ[4:] else "")
        raise CheckpointError(f"{checkpoint} is not this run's checkpoint: it holds {say(mine)}, but {path} says "
                              f"{say(theirs)} (a run resumes only its own checkpoint)")


def _agreeing(cfg):
    """What config.json and a checkpoint of its run must agree on: every option, except that the global
    batch (batch size x processes) may be split over another number of processes on resume."""
    c = {k: v for k, v in cfg.items() if k not in ("batch_size", "world_size")}
    B, W = cfg.get("batch_size"), cfg.get("world_size")
    c["global batch"] = B * W if _int_in(B, 1, LIMIT) and _int_in(W, 1, LIMIT) else (B, W)
    return c


def check_resume_state(path, meta, run):
    """Refuse a checkpoint whose position, optimizer or schedule is not what the run's configuration
    gives after the steps it has taken. ``run``: the fresh Run it is to be loaded into (its
    ``steps_per_epoch``, and ``state_after(steps)``: the optimizer's and schedule's state it would
    save then). Every value goes through the option rules first (momentum in [0, 1), ...) and is
    then compared; each difference names both values."""
    pos, epochs, per_epoch = meta["position"], run.cfg["epochs"], run.steps_per_epoch
    if pos["batch"] >= per_epoch:
        _raise(path, [f"position.batch {pos['batch']} is past the end of an epoch ({per_epoch} batches)"])
    if pos["batch"] and pos["epoch"] == epochs:
        _raise(path, [f"position.batch must be 0 once all {epochs} epochs are done, got {pos['batch']}"])
    steps, t = pos["epoch"] * per_epoch + pos["batch"], meta["schedule"].get("t")
    if _int_in(t, 0, LIMIT * LIMIT) and t != steps:   # one edit, not three differences
        _raise(path, [f"position.epoch {pos['epoch']} and position.batch {pos['batch']} make {steps} steps "
                      f"({per_epoch} per epoch), but schedule.t counts {t}"])
    expected = run.state_after(steps)
    problems = [p for key in ("optimizer", "schedule") for p in _differences(key, meta[key], expected[key])]
    if problems:
        _raise(path, problems)


_STATE_RULES = dict(momentum=OPTION_RULES["momentum"], weight_decay=OPTION_RULES["weight_decay"],
                    base_lr=OPTION_RULES["lr"], **{k: Rule(k, int, 0, LIMIT * LIMIT) for k in ("t", "step_count")},
                    **{k: Rule(k, int, 1, LIMIT * LIMIT) for k in ("total_steps", "warmup_steps", "n_params")})


def _differences(where, saved, want):
    """Sentences for every way ``saved`` (a value from a checkpoint) differs from ``want``, recursively."""
    if saved is _MISSING:
        return [f"{where} is missing (the run's configuration gives {want!r:.60})"]
    if isinstance(want, dict):
        if not isinstance(saved, dict):
            return [f"{where} must be a dict, got {saved!r:.80}"]
        extra = [f"{where} holds {', '.join(repr(k) for k in saved if k not in want)[:120]}, which this run does "
                 "not have"] if set(saved) - set(want) else []
        return extra + [p for k in want for p in _differences(f"{where}.{k}", saved.get(k, _MISSING), want[k])]
    rule = _STATE_RULES.get(where.rsplit(".", 1)[-1])
    problem = rule and rule.problem(saved)
    if problem:
        return [f"{where}: {problem}"]
    if not _same(saved, want):
        return [f"{where} is {saved!r:.60}, but the run's configuration gives {want!r:.60}"]
    return []


def _same(a, b):
    """Equal, and a bool only where the other is a bool too (True == 1 in Python)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def check_writable(folder):
    """Refuse a run folder that cannot be written, before any work: probe with a temporary file
    in it (or, if it does not exist yet, in the nearest folder above it that does)."""
    probe = os.path.abspath(folder)
    while not os.path.isdir(probe):
        if os.path.exists(probe):
            raise NotADirectoryError(f"the run folder {folder} cannot be created: {probe} is a file")
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
