"""minires: ResNet from first principles in NumPy, with hand-written backward passes.

    >>> import minires
    >>> from minires import nn
"""
import importlib

from . import models, nn, weights
from .backend import gpu_available, to_device, to_numpy, xp_of
from .gradcheck import check_function, check_module
from .nn import manual_seed, no_grad
from .summary import summary

__version__ = "0.1.0"

__all__ = ["nn", "models", "weights", "gpu_available", "to_device", "to_numpy", "xp_of", "check_module",
           "check_function", "manual_seed", "no_grad", "summary"]

# The other submodules load on first use (``minires.train.fit``, ``minires.data.load_dataset`` ...),
# so ``import minires`` stays quick and needs neither scikit-learn nor matplotlib.
_LAZY = ("backend", "data", "exercises", "experiments", "gradcheck", "imagenet", "optim", "predict", "preprocess",
         "train", "viz")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'minires' has no attribute {name!r}")
