"""Training: ``fit`` and what it is made of.

    loop.py           fit: the epochs, the batches, Ctrl-C and SIGTERM, progress, the summary
    notices.py        what stops a run: signals, a step that is not finite (TrainingDiverged), bad images
    extend.py         a resumed run given another number of epochs
    run.py            Run: data, model, optimizer and schedule from a config; checkpoints; the run folder
    evaluate.py       evaluate: loss and accuracy over a loader
    optim.py          SGD with momentum and weight decay, learning-rate schedules
    runcheck.py       the option rules; configs and training checkpoints checked before anything runs
    lock.py           RunLock: one writer per run folder (run.lock)
    data_parallel.py  what a run does differently on several processes (mpiexec)

    >>> from minires.train import fit
"""
from .evaluate import evaluate
from .loop import fit
from .notices import History, TrainingDiverged
from .run import Run, make_config, run_summary, write_metrics
from .optim import SGD, make_schedule

__all__ = ["fit", "History", "TrainingDiverged", "Run", "evaluate", "make_config", "run_summary", "write_metrics",
           "SGD", "make_schedule"]
