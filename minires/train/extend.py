"""A resumed run may change its length: ``fit(out=RUN, resume=True, epochs=60)``,
``minires train --resume RUN --epochs 60``. Nothing else of its configuration may change.

A run of 30 epochs, finished, goes on to 60; a run planned for 90 ends at 60. What the run is
made of carries on -- the weights, the momentum, the batch order of every epoch (epoch e
shuffles with its own generator) -- and the schedule is recomputed for the new length: a
cosine over 60 epochs is, at step t, what it would have been had the run been planned for 60
from the start (after a finished cosine over 30, that is a jump from 0 back up to half the
peak learning rate at epoch 30). The change is recorded in the configuration,
``epochs_changed``: from and to how many epochs, at which epoch and batch
(:func:`minires.train.runcheck.length_change`), and config.json is rewritten before the first
step; a checkpoint of the run saved before the change still resumes
(:func:`minires.train.resumecheck.check_run_config`).
"""
from .runcheck import config_problems, length_change


def resume_epochs(options):
    """The number of epochs a resumed run is asked for (None: its own); any other option is refused."""
    given = {k: v for k, v in options.items() if v is not None}
    other = [k for k in given if k != "epochs"]
    if other:
        raise ValueError("a resumed run keeps its saved configuration, except its length (epochs); drop "
                         + ", ".join(f"{k}={given[k]!r:.40}" for k in other))
    return given.get("epochs")


def change_length(cfg, position, epochs):
    """``cfg`` (a checkpoint's configuration, saved at ``position``) with ``epochs`` epochs, the change
    recorded; ``cfg`` itself if ``epochs`` is its own. Refuses a length shorter than what was trained."""
    if epochs == cfg["epochs"]:
        return cfg
    changed = dict(cfg, epochs=epochs, epochs_changed=(cfg["epochs_changed"] or []) + [
        length_change(cfg["epochs"], epochs, position)])
    problems = config_problems(changed)
    if problems:
        raise ValueError("; ".join(problems))
    begun = position["epoch"] + (position["batch"] > 0)      # finished, or stopped half-way through
    if epochs < begun:
        stopped = f", and stopped in epoch {begun}" if position["batch"] else ""
        done = position["epoch"]
        raise ValueError(f"this run has trained {done} epoch{'s' * (done != 1)}{stopped}: it cannot end after "
                         f"{epochs}; give --epochs {begun} or more")
    return changed


def apply_length(run, meta):
    """After ``run.load`` of a checkpoint saved at another length: the schedule recomputed for the
    run's, at the step the checkpoint reached. Says what changes. Returns the message."""
    old, new = meta["config"]["epochs"], run.cfg["epochs"]
    steps = run.schedule.t
    before = run.schedule.lr
    run.schedule.load_state_dict(run.state_after(steps, epochs=new)["schedule"])
    return (f"the run now has {new} epochs instead of {old}: its {run.cfg['schedule']} schedule is recomputed for "
            f"{new}, and the learning rate at step {steps} is {run.schedule.lr:.4g} (it was {before:.4g})")
