"""Hooks: look at (or change) what a module computes, without editing its code.

PyTorch's two, on the same contract:

    handle = module.register_forward_hook(fn)          fn(module, inputs, output) after its forward
    handle = module.register_full_backward_hook(fn)    fn(module, grad_input, grad_output) after its backward
    handle.remove()

``inputs`` is the tuple of positional arguments the forward got; ``grad_input`` and
``grad_output`` are one-element tuples, ``(dx,)`` and ``(grad_out,)``, as PyTorch passes them.
A forward hook that returns something other than None replaces the output; a backward hook
that returns a tuple replaces ``grad_input``. They fire wherever the module runs: called as
``module(x)``, as ``module.forward(x)`` (Sequential does), or its backward as
``module.backward(g)`` from its parent's backward.

They cost nothing when unused: not even a check. A module without hooks has no attribute of
its own named ``forward`` or ``backward``, so ``module.forward(x)`` finds the class's method, as
it always did. The first hook gives the module (this one object, not its class) its own
``forward`` (or ``backward``): ``hooked_forward`` bound to it, which calls the class's method and
then the hooks. Removing the last hook takes it away again.

Mind the in-place layers of the fast path (minires/engine/memory.py): a batch norm writes its
output over its input, a ReLU over that. An array a hook keeps is not "kept" in their sense, so
``output.copy()`` what you mean to keep. A forward hook's replacement output does not change
what the module kept for its backward: its backward runs as if its output had been its own.
Hooks are not part of ``state_dict()``; ``copy.deepcopy`` copies them, bound to the copy.
Under ThreadParallel a model with hooks runs alone (no replicas), so a hook sees the whole batch.
"""
import itertools
import types

_next_key = itertools.count()


class RemovableHandle:
    """What ``register_*_hook`` returns: ``handle.remove()`` takes that one hook away (twice is harmless)."""

    def __init__(self, module, kind, key):
        self.module, self.kind, self.key = module, kind, key

    def remove(self):
        """Take the hook away; when it was the module's last of its kind, the module's forward (or
        backward) is the class's method again, with no hook path left to enter."""
        hooks = vars(self.module).get(f"_{self.kind}_hooks", {})
        hooks.pop(self.key, None)
        if not hooks:
            vars(self.module).pop(self.kind, None)


def register_forward_hook(module, fn):
    """Call ``fn(module, inputs, output)`` after each forward of ``module``; returns a RemovableHandle.

    ``inputs``: the tuple of positional arguments; ``output``: what the forward returned. If
    ``fn`` returns something other than None, that is the module's output instead.

        >>> shapes = []
        >>> h = model.layer3.register_forward_hook(lambda m, inputs, out: shapes.append(out.shape))
        >>> model(x); h.remove()
    """
    return _register(module, "forward", fn, hooked_forward)


def register_full_backward_hook(module, fn):
    """Call ``fn(module, grad_input, grad_output)`` after each backward of ``module``; returns a RemovableHandle.

    ``grad_output = (grad_out,)``, the gradient that reached the module's output; ``grad_input =
    (dx,)``, what its backward returned. If ``fn`` returns a tuple, its first entry is returned
    instead of dx. The module's parameter gradients are already added when ``fn`` runs.

        >>> grads = []
        >>> h = model.layer3.register_full_backward_hook(lambda m, gin, gout: grads.append(gout[0].copy()))
    """
    return _register(module, "backward", fn, hooked_backward)


def _register(module, kind, fn, wrapper):
    if not callable(fn):
        raise TypeError(f"register_{kind}_hook: expected a function fn(module, ...), got {type(fn).__name__}")
    own = vars(module)
    hooks = own.setdefault(f"_{kind}_hooks", {})
    key = next(_next_key)
    hooks[key] = fn
    if kind not in own:                                       # the module's own forward/backward, from now on
        own[kind] = types.MethodType(wrapper, module)
    return RemovableHandle(module, kind, key)


def hooked_forward(module, *args, **kwargs):
    """The forward of a module that has forward hooks: the class's forward, then each hook in order."""
    output = type(module).forward(module, *args, **kwargs)
    return run_forward_hooks(module, args, output)


def run_forward_hooks(module, args, output):
    """``output`` after the module's forward hooks, each of which may replace it."""
    for fn in list(module._forward_hooks.values()):
        result = fn(module, args, output)
        if result is not None:
            output = result
    return output


def hooked_backward(module, grad_out):
    """The backward of a module that has backward hooks: the class's backward, then each hook in order."""
    dx = type(module).backward(module, grad_out)
    return run_backward_hooks(module, dx, grad_out)


def run_backward_hooks(module, dx, grad_out):
    """``dx`` after the module's backward hooks, each of which may replace it (by returning a tuple)."""
    for fn in list(module._backward_hooks.values()):
        result = fn(module, (dx,), (grad_out,))
        if result is not None:
            if not isinstance(result, tuple) or len(result) != 1:
                raise TypeError(f"{module._describe()}: a backward hook must return None or a 1-tuple "
                                f"(grad_input,), got {type(result).__name__}")
            dx = result[0]
    return dx


def has_hooks(module):
    """True if ``module`` itself (not those below it) has a forward or backward hook."""
    own = vars(module)
    return bool(own.get("_forward_hooks")) or bool(own.get("_backward_hooks"))
