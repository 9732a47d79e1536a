"""Evaluation: the mean loss and the accuracy of a model over a loader, in eval mode, with no cache.

Used after every epoch by :func:`minires.train.fit` (each process its share of the test set
under mpiexec, see :mod:`minires.train.data_parallel`) and by ``minires evaluate``.
"""
import numpy as np

from .. import nn
from ..backend import to_numpy


def evaluate(model, loader, criterion=None):
    """Mean loss, accuracy, and all predictions and labels over a loader (eval mode, no cache)."""
    criterion = criterion or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    total_loss, preds, labels = 0.0, [], []
    with nn.no_grad():
        for x, y in loader:
            logits = model(x)
            total_loss += float(criterion(logits, y)) * len(y)
            preds.append(to_numpy(logits.argmax(axis=1)))
            labels.append(to_numpy(y))
    model.train(was_training)
    preds, labels = np.concatenate(preds), np.concatenate(labels)
    return total_loss / len(labels), float(np.mean(preds == labels)), preds, labels
