"""The textbook: hand-written layers, each with an explicit forward and backward.

Each layer file opens with its textbook forward/backward functions, then the layer class. The
speed tricks are not here: they are the engine (minires/engine/), which a layer hands itself
to in one line of its forward and backward (``Module.fast``). ``with plain():`` runs
every layer on the textbook functions. This package imports only minires.backend and itself.
"""
from .activation import ReLU
from .conv import Conv2d
from .dropout import Dropout
from .im2col import col2im, im2col
from .init import get_rng_state, manual_seed, set_rng_state
from .linear import Flatten, Linear
from .loss import CrossEntropyLoss, log_softmax, softmax
from .module import Module, Parameter, Sequential
from .norm import BatchNorm2d
from .padding import ZeroPad2d
from .pool import AdaptiveAvgPool2d, MaxPool2d
from .switches import is_grad_enabled, is_plain, no_grad, plain

__all__ = ["Module", "Parameter", "Sequential", "no_grad", "is_grad_enabled", "plain", "is_plain",
           "manual_seed", "get_rng_state", "set_rng_state",
           "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d", "Linear", "Flatten", "Dropout", "ZeroPad2d",
           "CrossEntropyLoss", "softmax", "log_softmax", "im2col", "col2im"]
