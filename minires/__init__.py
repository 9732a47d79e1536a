"""minires: ResNet from first principles in NumPy, with hand-written backward passes.

    >>> import minires
    >>> from minires import nn
"""
from . import nn
from .backend import gpu_available, to_device, to_numpy, xp_of
from .gradcheck import check_function, check_module
from .nn import manual_seed, no_grad
from .summary import summary

__version__ = "0.1.0"

__all__ = ["nn", "gpu_available", "to_device", "to_numpy", "xp_of", "check_module", "check_function",
           "manual_seed", "no_grad", "summary"]
