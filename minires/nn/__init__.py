"""Hand-written layers: each with an explicit forward and backward."""
from .activation import ReLU
from .conv import Conv2d
from .im2col import col2im, im2col
from .init import manual_seed
from .linear import Flatten, Linear
from .loss import CrossEntropyLoss, log_softmax, softmax
from .module import Module, Parameter, Sequential, is_grad_enabled, no_grad
from .norm import BatchNorm2d
from .pool import AdaptiveAvgPool2d, MaxPool2d

__all__ = ["Module", "Parameter", "Sequential", "no_grad", "is_grad_enabled", "manual_seed",
           "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d", "Linear", "Flatten",
           "CrossEntropyLoss", "softmax", "log_softmax", "im2col", "col2im"]
