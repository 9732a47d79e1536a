"""The format of an exercise spec, and the helpers the two spec files share.

minires.teach.exercises checks a backward against a spec. The specs are in exercises_layers.py
(one layer each: relu, linear, conv2d, batchnorm, maxpool, grouped_conv2d) and
exercises_blocks.py (residual blocks: basic_block, projection_block); each exercise in their
EXERCISES dicts is a dict:
    forward(*inputs, **case) -> y        what the learner differentiates (float64 NumPy)
    inputs(rng) -> [arrays]              small, seeded, away from ReLU's kink and max ties
    grads                                the names of the gradients, in the order returned
    cases                                keyword sets the backward is called with (stride, padding ...)
    reference(*inputs, dy, **case)       the right gradients, {name: array}, from minires.nn layers
    wrong(*inputs, dy, **case)           [(name, array, hint)]: common mistakes, computed, so that an
                                         answer equal to one of them gets that mistake's hint (one of
                                         another shape than the gradient's: an answer of that shape)
    pattern(name, yours, right, *inputs, dy, **case)  optional: a hint from the shape of the error
    alone                                optional {name: hint} for when only that gradient is wrong
    where(name, wrong_names)             optional: a hint from WHICH gradients are wrong (blocks)
    rules(fn, **case)                    optional: checks a gradient check cannot make (max-pool's
                                         ties); None, or (name, message) for the first rule broken
    general                              {name: hint, or hint(case)} when a gradient is wrong in no
                                         known way
    smooth=True, or kinks(*inputs, **case)  the forward has no kink, or {kink's name: pattern} (the sign
                                         of a ReLU's input, a max-pool window's winner): the gradient
                                         check's table says "the gradient is wrong" where no kink was
                                         crossed, not "a kink?" (neither: it cannot tell)
    shape_error(produced, expected, code, *inputs, **case)  optional: a hint for a NumPy shape error
                                         inside the backward (``code``: the lines of it that ran)
The right gradients come from the layers in minires.nn (an independent implementation of
the same maths), never from the forwards, which are written for reading. The helpers below
build those layers in float64 with given parameters and run them.
"""
import numpy as np

from .. import nn


def float64_layer(module, **params):
    """``module`` in float64 with its parameters set to ``params`` (attribute name -> array)."""
    module.to(dtype=np.float64)
    for name, value in params.items():
        p = getattr(module, name)
        p.data, p.grad = np.array(value, dtype=np.float64), np.zeros(np.shape(value))
    return module


def conv_layer(W, b, stride, padding):
    """An nn.Conv2d with weight W (O, C, K, K) and bias b (or None, for no bias), in float64."""
    O, C, K, _ = W.shape
    conv = nn.Conv2d(C, O, K, stride=stride, padding=padding, bias=b is not None)
    return float64_layer(conv, weight=W, **({} if b is None else {"bias": b}))


def bn_layer(gamma, beta, eps=1e-5):
    """An nn.BatchNorm2d with weight gamma and bias beta, in float64 (training mode)."""
    bn = float64_layer(nn.BatchNorm2d(len(gamma), eps=eps), weight=gamma, bias=beta)
    return bn


def layer_dx(layer, x, dy):
    """x through ``layer``'s forward, dy through its backward: returns dx (the parameters'
    gradients are left in their ``.grad``)."""
    layer.forward(x)
    return layer.backward(dy)


class SpecKinkWatch:
    """KinkWatch's ``watched`` and ``crossed()`` (minires/teach/gradcheck.py) for an exercise's forward:
    ``spec["kinks"](*inputs, **case)`` gives each kink's pattern (the sign of a ReLU's input, each
    max-pool window's winner), the inputs' own the reference; a ``smooth`` exercise has none, so a
    failing row of its table says "the gradient is wrong", never "a kink?"."""

    def __init__(self, spec, case, inputs):
        self.kinks, self.case = spec.get("kinks", lambda *a, **k: {}), case
        self.reference = self.now = self.kinks(*inputs, **case)
        self.watched = list(self.reference)

    def see(self, arrays):
        self.now = self.kinks(*arrays, **self.case)

    def crossed(self):
        return next((k for k, p in self.now.items() if np.any(p != self.reference[k])), "")
