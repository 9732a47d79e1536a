"""Checks that come before training touches anything: the configuration, a checkpoint to
resume, and whether the run folder can be written.

A checkpoint is a file from the past, perhaps edited by hand or by a stranger. Before a
resumed run builds a model, loads data or writes a byte, :func:`check_training_checkpoint`
reads it (bounded, :mod:`minires.weights`) and checks every value the loop will use --
types, ranges, known names -- reporting each problem in its own sentence, all at once.
A config that says ``data: cifar10`` cannot start a download either: a resumed run never
downloads (see :func:`minires.train.fit`).
"""
import math
import numbers
import os
import tempfile

import numpy as np

from ..backend import DEVICES
from ..data import DATASETS
from ..models import MODELS
from ..weights import load_checkpoint
from .optim import SCHEDULES

FORMAT = "minires-train-1"
DEFAULTS = dict(model="resnet20", data="digits", epochs=30, batch_size=64, lr=0.1, momentum=0.9,
                weight_decay=5e-4, schedule="cosine", warmup_epochs=0, device="cpu", dtype="float32", seed=0,
                augment=None, sync_bn=False,
                world_size=1)  # world_size: recorded, not chosen -- the number of processes (see distributed.py)
LIMIT = 1 << 20           # epochs and batch size: anything above is a typo or a tampered file


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
    if get("data") not in DATASETS:
        problems.append(f"unknown data set {get('data')!r:.80}; valid names are: {', '.join(DATASETS)}")
    for key in ("epochs", "batch_size"):
        if not _int_in(get(key), 1, LIMIT):
            problems.append(f"{key.replace('_', ' ')} must be a positive integer, got {get(key)!r:.80}")
    if not _real_in(get("lr"), 0, 1e3, low_open=True):
        problems.append(f"the learning rate must be a positive number, got {get('lr')!r:.80}")
    if not _real_in(get("momentum"), 0, 1) or get("momentum") == 1:
        problems.append(f"momentum must be a number in [0, 1), got {get('momentum')!r:.80}")
    if not _real_in(get("weight_decay"), 0, 1e3):
        problems.append(f"weight decay must be a number >= 0, got {get('weight_decay')!r:.80}")
    if get("schedule") not in SCHEDULES:
        problems.append(f"schedule must be one of {', '.join(SCHEDULES)}, got {get('schedule')!r:.80}")
    if not _int_in(get("warmup_epochs"), 0, LIMIT):
        problems.append(f"warmup epochs must be an integer >= 0, got {get('warmup_epochs')!r:.80}")
    elif _int_in(get("epochs"), 1, LIMIT) and get("warmup_epochs") >= get("epochs"):
        problems.append(f"warmup epochs ({get('warmup_epochs')}) must be fewer than epochs ({get('epochs')})")
    if get("device") not in DEVICES:
        problems.append(f"device must be one of {DEVICES}, got {get('device')!r:.80}")
    if get("dtype") not in ("float32", "float64"):
        problems.append(f"dtype must be 'float32' or 'float64', got {get('dtype')!r:.80}")
    if not _int_in(get("seed"), 0, 2 ** 63 - 1):
        problems.append(f"seed must be an integer >= 0, got {get('seed')!r:.80}")
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
    history = meta.get("history")
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        problems.append(f"history must be a list of per-epoch dicts, got {type(history).__name__}")
    elif _int_in(pos["epoch"], 0, epochs) and len(history) != pos["epoch"]:
        problems.append(f"history has {len(history)} epochs but position.epoch says {pos['epoch']} are done")
    if not _real_in(meta.get("best"), 0, 1):
        problems.append(f"best must be an accuracy in [0, 1], got {meta.get('best')!r:.80}")
    for key in ("optimizer", "schedule"):
        if not isinstance(meta.get(key), dict):
            problems.append(f"{key} must be a dict (its saved state), got {type(meta.get(key)).__name__}")
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
    if resume:
        problems += position_problems(meta, cfg)
    if problems:
        _raise(path, problems)
    return cfg, arrays, meta


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
