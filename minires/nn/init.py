"""Weight initialisation, and the one random generator of minires's layers.

``manual_seed(0)`` makes models repeatable: initial weights and the random choices of
stochastic layers (Dropout's masks) all come from one NumPy generator. Numbers are always
drawn with NumPy on the CPU (so a seed gives the same numbers on every backend) and moved
to the layer's device afterwards. ``get_rng_state`` / ``set_rng_state`` save and restore the
generator: the gradient checker replays the same masks on every re-run of a forward.
"""
import copy
import math

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed the generator used by every layer's initialisation and by stochastic layers."""
    global _rng
    _rng = np.random.default_rng(seed)


def generator():
    """The generator itself (a ``numpy.random.Generator``): draw from it, never re-seed it."""
    return _rng


def get_rng_state():
    """A snapshot of the generator's state, for ``set_rng_state``."""
    return copy.deepcopy(_rng.bit_generator.state)


def set_rng_state(state):
    """Put the generator back into a state taken by ``get_rng_state``: the same draws follow."""
    _rng.bit_generator.state = copy.deepcopy(state)


def uniform(shape, bound, dtype=np.float32):
    """U(-bound, bound): PyTorch's default for Conv2d and Linear is bound = 1/sqrt(fan_in)."""
    return _rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_normal_fan_out(shape, dtype=np.float32):
    """N(0, 2/fan_out), fan_out = out_channels * kh * kw: He et al. (2015) for ReLU nets,
    as torchvision initialises ResNet convolutions (mode='fan_out', nonlinearity='relu')."""
    fan_out = shape[0] * int(np.prod(shape[2:]))
    return (_rng.standard_normal(shape) * math.sqrt(2.0 / fan_out)).astype(dtype)
