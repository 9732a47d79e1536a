"""Resuming: is this checkpoint the run's own, and is its state what the run's configuration gives?

:func:`check_run_config` compares a checkpoint's configuration with the run folder's config.json
(a run resumes only its own checkpoint); :func:`check_resume_state`, once the Run is built,
compares every optimizer and schedule value with what the configuration gives after the steps
the checkpoint has taken. What a checkpoint must hold to be read at all is
:func:`minires.train.runcheck.check_training_checkpoint`'s.
"""
import json
import os

from .runcheck import (DEFAULTS, LIMIT, MAX_CONFIG_BYTES, OPTION_RULES, CheckpointError, Rule, int_in, raise_problems,
                       length_change)


class _Missing:
    """A value absent from a dict, in a message: 'nothing'."""

    def __repr__(self):
        return "nothing"


_MISSING = _Missing()

def check_run_config(folder, cfg, checkpoint, position=None):
    """Refuse a checkpoint that is not the run's own: ``folder``/config.json, written when the run
    began, must give the checkpoint's configuration ``cfg`` (the global batch, batch size x
    processes, may be split over another number of processes). Missing, unreadable or different,
    it is one sentence naming both files. Returns config.json's configuration.

    One difference is the run's own: config.json one change of length ahead of a checkpoint
    saved at ``position`` (a run resumed with other epochs rewrites config.json before training,
    and may be stopped before its first save: minires/train/extend.py)."""
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
    if differ and position is not None and _one_change_ahead(theirs, mine, position):
        return dict(DEFAULTS, **saved)
    if differ:
        def say(c):
            return ", ".join(f"{k} {c.get(k, _MISSING)!r:.40}" for k in differ[:4]) + (" ..." if differ[4:] else "")
        raise CheckpointError(f"{checkpoint} is not this run's checkpoint: it holds {say(mine)}, but {path} says "
                              f"{say(theirs)} (a run resumes only its own checkpoint)")
    return dict(DEFAULTS, **saved)


def _one_change_ahead(saved, cfg, position):
    """Whether the configuration ``saved`` is ``cfg`` with one more change of length, made at ``position``."""
    before, after = cfg.get("epochs_changed") or [], saved.get("epochs_changed")
    if not isinstance(after, list) or after[:-1] != before:
        return False
    return (_same(dict(saved, epochs=cfg["epochs"], epochs_changed=cfg["epochs_changed"]), cfg)
            and _same(after[-1], length_change(cfg["epochs"], saved["epochs"], position)))


def _agreeing(cfg):
    """What config.json and a checkpoint of its run must agree on: every option, except that the global
    batch (batch size x processes) may be split over another number of processes on resume."""
    c = {k: v for k, v in cfg.items() if k not in ("batch_size", "world_size")}
    B, W = cfg.get("batch_size"), cfg.get("world_size")
    c["global batch"] = B * W if int_in(B, 1, LIMIT) and int_in(W, 1, LIMIT) else (B, W)
    return c


def check_resume_state(path, meta, run):
    """Refuse a checkpoint whose position, optimizer or schedule is not what the run's configuration
    gives after the steps it has taken. ``run``: the fresh Run it is to be loaded into (its
    ``steps_per_epoch``, and ``state_after(steps)``: the optimizer's and schedule's state it would
    save then). Every value goes through the option rules first (momentum in [0, 1), ...) and is
    then compared; each difference names both values. The checkpoint's state is its own length's
    (``meta['config']['epochs']``), which a resumed run may change (extend.py)."""
    pos, epochs, per_epoch = meta["position"], meta["config"]["epochs"], run.steps_per_epoch
    if pos["batch"] >= per_epoch:
        raise_problems(path, [f"position.batch {pos['batch']} is past the end of an epoch ({per_epoch} batches)"])
    if pos["batch"] and pos["epoch"] == epochs:
        raise_problems(path, [f"position.batch must be 0 once all {epochs} epochs are done, got {pos['batch']}"])
    steps, t = pos["epoch"] * per_epoch + pos["batch"], meta["schedule"].get("t")
    if int_in(t, 0, LIMIT * LIMIT) and t != steps:   # one edit, not three differences
        raise_problems(path, [f"position.epoch {pos['epoch']} and position.batch {pos['batch']} make {steps} steps "
                      f"({per_epoch} per epoch), but schedule.t counts {t}"])
    expected = run.state_after(steps, epochs)
    problems = [p for key in ("optimizer", "schedule") for p in _differences(key, meta[key], expected[key])]
    if problems:
        raise_problems(path, problems)


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
