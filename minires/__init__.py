"""minires: ResNet from first principles in NumPy, with hand-written backward passes.

    >>> import minires
    >>> from minires import nn

The house, each floor importing only from those below it:

    backend      the array-module switch (NumPy or CuPy)
    nn           the textbook: the module contract and one file per layer type
    engine       the fast path beneath it (registered with nn when minires is imported)
    parallel     threads, processes (mpiexec) and batch norm over both
    models       the ResNet family, PyTorch flavour      keras   the Keras flavour
    weights      readers of weight files from strangers  data    data sets and batches
    zoo          every model by name (get_model)
    train        fit and its parts                       predict published weights -> classes
    explain      feature maps, saliency, Grad-CAM
    teach        gradient checks, exercises, experiments, figures
    cli          the command line
"""
import importlib

from . import engine, models, nn, weights
from .backend import gpu_available, to_device, to_numpy, xp_of
from .nn import manual_seed, no_grad
from .teach.gradcheck import check_function, check_module
from .teach.summary import summary

__version__ = "0.1.0"

__all__ = ["nn", "models", "weights", "gpu_available", "to_device", "to_numpy", "xp_of", "check_module",
           "check_function", "manual_seed", "no_grad", "summary"]

# The other packages load on first use (``minires.train.fit``, ``minires.data.load_dataset`` ...),
# so ``import minires`` stays quick and needs neither scikit-learn nor matplotlib.
_LAZY = ("backend", "data", "explain", "keras", "parallel", "predict", "teach", "train", "zoo")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'minires' has no attribute {name!r}")
