"""Training: ``fit`` and what it is made of.

    loop.py           fit: the epochs, validation, the test set once at the end, Ctrl-C and SIGTERM, the summary
    epoch.py          one epoch: its order, its checked steps, its row of the history
    notices.py        what stops a run: signals, a step that is not finite (TrainingDiverged), bad images
    extend.py         a resumed run given another number of epochs
    run.py            Run: data, model, optimizer and schedule from a config; checkpoints; the run folder
    evaluate.py       evaluate: loss and accuracy over a loader
    optim.py          SGD with momentum and weight decay, learning-rate schedules
    runcheck.py       the option rules; configs and training checkpoints checked before anything runs
    resumecheck.py    a resumed checkpoint is the run's own, its optimizer and schedule what its config gives
    transfer.py       with_new_head, trunk_features: a trained trunk, frozen, under a new classifier
    lock.py           RunLock: one writer per run folder (run.lock)
    data_parallel.py  what a run does differently on several processes (mpiexec)

    >>> from minires.train import fit
"""
from .evaluate import evaluate
from .loop import fit
from .notices import History, TrainingDiverged
from .run import Run, make_config, run_summary, write_metrics
from .optim import SGD, make_schedule
from .transfer import feature_channels, trunk_features, with_new_head

__all__ = ["fit", "History", "TrainingDiverged", "Run", "evaluate", "make_config", "run_summary", "write_metrics",
           "SGD", "make_schedule", "with_new_head", "trunk_features", "feature_channels"]
