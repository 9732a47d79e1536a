"""The two switches every layer reads: ``no_grad`` and the plain path.

Two paths: Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d and ZeroPad2d each have a
*plain* path (the textbook functions at the top of their file) and a *fast* one, the default,
with the same numbers and less memory traffic. The fast path lives in ``minires/engine/``,
beneath this package: nn/ never imports it. The engine sets each such layer class's ``fast``
attribute instead (``Module.fast``), and a layer's forward and backward hand themselves to it
in one line, unless ``plain_path`` is on: ``with plain():`` or ``MINIRES_PLAIN=1`` sends every
layer down the plain path. The layers read the two flags, ``grad_enabled`` and ``plain_path``,
as they are; the functions below set them.

``MINIRES_PLAIN`` is read once, when minires is imported: 1 or true turns the plain path on,
0, false, empty or unset leaves it off (any case, spaces ignored). Anything else ("yes", "2")
stops the import with a ValueError naming the variable and the values it takes.
"""
import contextlib
import os
from collections import namedtuple

FastPath = namedtuple("FastPath", "forward backward")   # forward(layer, x), backward(layer, grad_out)

_PLAIN_VALUES = {"1": True, "true": True, "0": False, "false": False, "": False}   # MINIRES_PLAIN's, lower case


def _plain_from_environment():
    """``MINIRES_PLAIN`` as a bool (see the module docstring); a value it does not take raises."""
    raw = os.environ.get("MINIRES_PLAIN", "")
    value = _PLAIN_VALUES.get(raw.strip().lower())
    if value is None:
        raise ValueError(f"MINIRES_PLAIN must be 1, 0, true or false (or unset), got {raw!r}")
    return value


grad_enabled = True
plain_path = _plain_from_environment()


@contextlib.contextmanager
def no_grad():
    """Inside ``with no_grad():`` layers keep nothing for backward (inference uses less memory)."""
    global grad_enabled
    previous, grad_enabled = grad_enabled, False
    try:
        yield
    finally:
        grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Inside ``with enable_grad():`` layers keep what backward needs, even inside ``no_grad``
    (minires.explain runs a backward, whatever the caller's switch)."""
    global grad_enabled
    previous, grad_enabled = grad_enabled, True
    try:
        yield
    finally:
        grad_enabled = previous


def is_grad_enabled():
    """False inside ``with no_grad():`` (layers then keep nothing for backward), True otherwise."""
    return grad_enabled


@contextlib.contextmanager
def plain(enabled=True):
    """Inside ``with plain():`` every layer runs its plain path: the textbook forward and
    backward functions at the top of its file (``conv_forward``, ``batchnorm_forward`` ...),
    with no workspace, chunking or memory-layout trick in between. Same numbers, slower.
    ``MINIRES_PLAIN=1`` in the environment makes the plain path the default (notebooks, CLI).
    """
    global plain_path
    previous, plain_path = plain_path, bool(enabled)
    try:
        yield
    finally:
        plain_path = previous


def is_plain():
    """True when layers run their plain (textbook) path; see ``plain``."""
    return plain_path
