"""Hand-written layers: each with an explicit forward and backward.

Each layer file opens with its textbook forward/backward functions, then the layer class; the
speed tricks come last. ``with plain():`` runs every layer on the textbook functions.
"""
from .activation import ReLU
from .conv import Conv2d
from .dropout import Dropout
from .im2col import col2im, im2col
from .init import get_rng_state, manual_seed, set_rng_state
from .linear import Flatten, Linear
from .loss import CrossEntropyLoss, log_softmax, softmax
from .module import Module, Parameter, Sequential, is_grad_enabled, is_plain, may_overwrite, no_grad, plain
from .norm import BatchNorm2d
from .pool import AdaptiveAvgPool2d, MaxPool2d
from .syncbn import SyncBatchNorm, convert_sync_batchnorm
from .threads import ThreadParallel

__all__ = ["Module", "Parameter", "Sequential", "no_grad", "is_grad_enabled", "plain", "is_plain",
           "may_overwrite", "manual_seed", "get_rng_state", "set_rng_state",
           "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d", "Linear", "Flatten", "Dropout",
           "SyncBatchNorm", "convert_sync_batchnorm", "ThreadParallel",
           "CrossEntropyLoss", "softmax", "log_softmax", "im2col", "col2im"]
