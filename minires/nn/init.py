"""Weight initialisation, with one seeded generator so that ``manual_seed(0)`` makes models repeatable.

Weights are always drawn with NumPy on the CPU (so a seed gives the same numbers on every
backend) and moved afterwards with ``model.to('cuda')``.
"""
import math

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed the generator used by every layer's initialisation."""
    global _rng
    _rng = np.random.default_rng(seed)


def uniform(shape, bound, dtype=np.float32):
    """U(-bound, bound): PyTorch's default for Conv2d and Linear is bound = 1/sqrt(fan_in)."""
    return _rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_normal_fan_out(shape, dtype=np.float32):
    """N(0, 2/fan_out), fan_out = out_channels * kh * kw: He et al. (2015) for ReLU nets,
    as torchvision initialises ResNet convolutions (mode='fan_out', nonlinearity='relu')."""
    fan_out = shape[0] * int(np.prod(shape[2:]))
    return (_rng.standard_normal(shape) * math.sqrt(2.0 / fan_out)).astype(dtype)
