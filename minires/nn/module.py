"""Module, Parameter and Sequential: the skeleton every layer hangs on.

There is no autograd. The contract, the same for every layer, lives here: ``forward(x)``
computes the output and hands what the backward will need to ``self.save_for_backward(...)``
(nothing under ``no_grad``); ``backward(grad_out)`` reads it back from ``self.saved``, returns
the gradient with respect to the input and ADDS its parameters' gradients into ``param.grad``.
A network's backward is its layers' backwards called in reverse order.

The switches every layer reads (``no_grad``, ``plain``) are in switches.py; the fast path of a
layer class, when the engine (minires/engine/) gives it one, is its ``fast`` attribute.
"""
import weakref

import numpy as np

from ..backend import DeviceError, check_device, device_of, to_device, xp_of
from . import hooks, switches

# ----- what layers keep for their backward -----
# Every array a layer keeps for its backward is recorded here by the array that owns its
# memory -- ``a.base`` for a view (NumPy and CuPy both point a view's base, even a view of a
# view, at the owner), else ``a`` itself -- so that an in-place layer of the fast path can tell
# whether it may write over its input (minires/engine/memory.py:may_overwrite).
kept = weakref.WeakValueDictionary()    # id(owner) -> owner; an entry goes when the owner is freed
kept_for_good = set()                   # ids of owners that cannot be weakly referenced


def _not_array(a):
    """What ``a`` is, and how to make an array of it (a torch tensor, a list ...)."""
    kind = f"{type(a).__module__}.{type(a).__name__}".replace("builtins.", "")
    hint = "x.detach().cpu().numpy()" if type(a).__module__.startswith("torch") else "np.asarray(x, dtype=np.float32)"
    return f"{kind}; convert it with {hint}"


class Parameter:
    """A trainable array ``data`` and its gradient ``grad`` (same array module, dtype and shape).

    ``requires_grad`` False (``Module.freeze``) tells the optimizer to leave it alone.
    """

    requires_grad = True

    def __init__(self, data):
        self.data = data
        self.grad = xp_of(data).zeros_like(data)

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype}, device={device_of(self.data)})"


class Module:
    """Base class of every layer and network.

    Sub-modules and Parameters are found by looking at the attributes, in the order they
    were set, so ``self.conv1 = Conv2d(...)`` is all it takes to register one; the
    attribute names become the state_dict keys (``layer1.0.conv1.weight``), exactly as in
    PyTorch. Buffers (state that is saved but not trained, like batch norm's running mean)
    are the attributes named in ``buffer_names``.
    """

    buffer_names = ()
    training = True
    frozen = False   # set by freeze(): stays in eval mode, its parameters are not trained
    fast = None   # the engine's fast path for this class (a switches.FastPath), set by minires/engine/
    path = ""  # dotted name inside the network, e.g. 'layer1.0.conv1'; set when attached
    _saved = None          # what the last forward kept for backward (see save_for_backward)
    _saved_plain = False   # ... and whether that forward took the plain path

    def __setattr__(self, name, value):
        # A module learns its full dotted name when it is attached, so that an error raised
        # deep in a network can say *which* layer ('layer3.2.conv1') got the bad input.
        if isinstance(value, Module):
            for sub_name, sub in value.named_modules():
                object.__setattr__(sub, "path", f"{name}.{sub_name}" if sub_name else name)
        object.__setattr__(self, name, value)

    # ----- the contract every layer fills in -----
    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, grad_out):
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # hooks (hooks.py): free when unused, since only a module with hooks gets a forward/backward of its own
    register_forward_hook = hooks.register_forward_hook
    register_full_backward_hook = hooks.register_full_backward_hook

    def save_for_backward(self, *values):
        """Keep ``values`` (arrays, shapes, flags) for the backward: every layer does it this way.

        Under ``no_grad`` nothing is kept. The arrays among ``values`` are recorded as kept
        (``kept``), so that no in-place layer writes over them before this layer's
        backward has run: pass arrays as values of their own, not inside a tuple.
        """
        # vars(self).update: plain attributes, no need for __setattr__'s bookkeeping of sub-modules
        if not switches.grad_enabled:
            vars(self).update(_saved=None)
            return
        for value in values:
            if hasattr(value, "base") and getattr(value, "ndim", 0) > 0:    # an array: its memory is kept
                owner = value if value.base is None else value.base
                try:
                    kept[id(owner)] = owner
                except TypeError:                                         # not weakly referable
                    kept_for_good.add(id(owner))
        vars(self).update(_saved=values, _saved_plain=switches.plain_path)

    @property
    def saved(self):
        """The tuple the last forward gave to ``save_for_backward``.

        An error if there was no forward, or if the plain switch changed between the forward
        and the backward: each path's backward needs what its own forward kept.
        """
        if self._saved is None:
            raise RuntimeError(f"{self._describe()}: backward called without a forward (or under no_grad)")
        if self._saved_plain != switches.plain_path:
            paths = ("fast", "plain") if switches.plain_path else ("plain", "fast")
            raise RuntimeError(f"{self._describe()}: the forward ran the {paths[0]} path and the backward runs "
                               f"the {paths[1]} path; run both inside (or both outside) `with plain():`")
        return self._saved

    def clear_saved(self):
        """Forget what the last forward kept for backward."""
        vars(self).update(_saved=None)

    # ----- walking the tree -----
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        return [value for value in vars(self).values() if isinstance(value, Module)]

    def named_modules(self, prefix=""):
        """(name, module) for this module and every module below it, depth first."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) pairs: a module's own parameters first, then its children's."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield (f"{prefix}.{name}" if prefix else name), value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}.{name}" if prefix else name)

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        for name in self.buffer_names:
            yield (f"{prefix}.{name}" if prefix else name), getattr(self, name)
        for name, child in self.named_children():
            yield from child.named_buffers(f"{prefix}.{name}" if prefix else name)

    def buffers(self):
        return [b for _, b in self.named_buffers()]

    def num_parameters(self):
        return int(sum(p.data.size for p in self.parameters()))

    # ----- modes and gradients -----
    def train(self, mode=True):
        """Training mode (``mode=False``: eval mode) for this module and all below it; a frozen one stays in eval."""
        for m in self.modules():
            m.training = mode and not m.frozen
        return self

    def freeze(self):
        """Stop training this module: ``requires_grad = False`` on each of its parameters (SGD skips them),
        and eval mode for it and every module below it, kept by a later ``train()``. In eval mode its
        batch norms normalise with the running statistics they learnt and do not update them: a frozen
        trunk gives the same features in training as at test time, and nothing in it changes.
        A backward through it still adds into its parameters' ``.grad`` (there is no autograd to prune).

            >>> model.layer1.freeze(); model.train(); model.layer1.training, model.layer2.training
            (False, True)
        """
        for m in self.modules():
            m.frozen, m.training = True, False
        for p in self.parameters():
            p.requires_grad = False
        return self

    def unfreeze(self):
        """Undo ``freeze``: every parameter trainable again; the modes change at the next ``train()``/``eval()``."""
        for m in self.modules():
            m.frozen = False
        for p in self.parameters():
            p.requires_grad = True
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad[...] = 0

    # ----- saving and loading -----
    def state_dict(self):
        """name -> array for every parameter and buffer (the arrays themselves, not copies).

        Keys are ordered as PyTorch orders them: a module's own parameters, its own
        buffers, then each child's entries in turn.
        """
        sd = {}
        self._fill_state_dict(sd, "")
        return sd

    def _fill_state_dict(self, sd, prefix):
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                sd[prefix + name] = value.data
        for name in self.buffer_names:
            sd[prefix + name] = getattr(self, name)
        for name, child in self.named_children():
            child._fill_state_dict(sd, f"{prefix}{name}.")

    def load_state_dict(self, state_dict, strict=True):
        """Copy the arrays of ``state_dict`` into this module's parameters and buffers: all or nothing.

        Every entry is checked first: its key, that it is an array (NumPy or CuPy), its shape,
        and that its dtype converts without changing its meaning (floats or integers into a
        floating parameter, integers into an integer buffer such as num_batches_tracked;
        never complex, strings, bools or objects). Then every value is converted to this
        module's dtype and device; only when all of that has succeeded is anything assigned,
        so a bad entry late in the dict never leaves a half-loaded model. With ``strict``
        every key must match. All problems are reported in one error (KeyError for keys and
        shapes, TypeError when only dtypes are wrong). Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"{self._describe()}: load_state_dict expects a dict name -> array, "
                            f"got {type(state_dict).__name__}")
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched, wrong_type = [], []
        accepts = {"f": "fiu", "i": "iu", "u": "iu"}      # target kind -> source kinds that convert
        for k, target in own.items():
            if k not in state_dict:
                continue
            value = state_dict[k]
            if not (hasattr(value, "shape") and hasattr(value, "dtype") and isinstance(value, xp_of(value).ndarray)):
                wrong_type.append(f"{k}: expected a NumPy or CuPy array, got {_not_array(value)}")
            elif tuple(value.shape) != tuple(target.shape):
                mismatched.append(f"{k}: model has {tuple(target.shape)}, state_dict has {tuple(value.shape)}")
            elif value.dtype.kind not in accepts.get(target.dtype.kind, target.dtype.kind):
                wrong_type.append(f"{k}: dtype {value.dtype} cannot be loaded into {target.dtype}")

        def listed(items, what):
            more = f" ... ({len(items)} in all)" if len(items) > 10 else ""
            return f"{what} ({len(items)}): " + "; ".join(items[:10]) + more

        problems = []
        if mismatched:
            problems.append(listed(mismatched, "shape mismatch"))
        if wrong_type:
            problems.append(listed(wrong_type, "wrong type"))
        if strict and missing:
            problems.append(listed(missing, "missing keys"))
        if strict and unexpected:
            problems.append(listed(unexpected, "unexpected keys"))
        if problems:
            error = TypeError if not (mismatched or (strict and (missing or unexpected))) else KeyError
            raise error(f"{self._describe()}: load_state_dict failed, nothing was loaded: " + " | ".join(problems))
        # Convert everything first (a failure here -- out of memory, say -- also loads nothing) ...
        ready = {k: xp_of(t).asarray(to_device(state_dict[k], device_of(t)), dtype=t.dtype)
                 for k, t in own.items() if k in state_dict}
        # ... then assign: shapes and dtypes already match, so this cannot fail half-way.
        for k, value in ready.items():
            own[k][...] = value
        return missing, unexpected

    # ----- devices and dtypes -----
    def to(self, device=None, dtype=None):
        """Move every parameter, gradient and buffer to ``device`` ('cpu'/'cuda') and/or
        cast the floating ones to ``dtype``. Integer buffers (num_batches_tracked) keep theirs.
        What a previous forward kept for backward is dropped."""
        if device is not None:
            check_device(device)
        dtype = None if dtype is None else np.dtype(dtype)
        if dtype is not None and dtype.kind != "f":
            raise TypeError(f"{self._describe()}.to: dtype must be a floating type, got {dtype}")

        def convert(a):
            if device is not None:
                a = to_device(a, device)
            if dtype is not None and a.dtype.kind == "f":
                a = a.astype(dtype, copy=False)
            return a

        for m in self.modules():
            for value in vars(m).values():
                if isinstance(value, Parameter):
                    value.data, value.grad = convert(value.data), convert(value.grad)
            for name in m.buffer_names:
                object.__setattr__(m, name, convert(getattr(m, name)))
            m.clear_saved()
        return self

    # ----- helpers for clear error messages -----
    def _describe(self):
        return f"{type(self).__name__} '{self.path}'" if self.path else type(self).__name__

    def check_input(self, x, ndim=None, channels=None, channel_axis=1, what="input"):
        """Raise a clear error if ``x`` is not what this layer expects.

        Checks that ``x`` is a NumPy or CuPy array (not a torch tensor or a list), of rank
        ``ndim`` with at least one sample, with ``channels`` entries along ``channel_axis``
        (features, for a rank-2 input), of a native-endian floating dtype equal to the
        parameters' dtype, and on the same device as the parameters.
        """
        if not (hasattr(x, "shape") and hasattr(x, "dtype") and isinstance(x, xp_of(x).ndarray)):
            raise TypeError(f"{self._describe()}: expected a NumPy or CuPy array as {what}, got {_not_array(x)}")
        if ndim is not None and x.ndim != ndim:
            layout = {4: "(N, C, H, W)", 2: "(N, features)"}.get(ndim, f"{ndim} dimensions")
            raise ValueError(f"{self._describe()}: expected {what} of rank {ndim} {layout}, "
                             f"got shape {tuple(x.shape)} (rank {x.ndim})")
        if ndim is not None and x.shape[0] == 0:
            raise ValueError(f"{self._describe()}: expected a batch of at least one sample as {what}, "
                             f"got an empty batch (shape {tuple(x.shape)})")
        if channels is not None and x.shape[channel_axis] != channels:
            unit = "features" if x.ndim == 2 else "channels"
            raise ValueError(f"{self._describe()}: expected {channels} {unit} at axis {channel_axis} of {what}, "
                             f"got {x.shape[channel_axis]} (shape {tuple(x.shape)})")
        if x.dtype.kind != "f":
            raise TypeError(f"{self._describe()}: expected a floating-point {what}, got dtype {x.dtype} "
                            f"(convert with x.astype(np.float32))")
        if not x.dtype.isnative:
            raise TypeError(f"{self._describe()}: {what} has non-native byte order (dtype '{x.dtype.str}'); "
                            f"convert it with x.astype(np.{x.dtype.name})")
        p = next((v.data for v in vars(self).values() if isinstance(v, Parameter)), None)  # its own, if any
        if p is not None:
            if xp_of(x) is not xp_of(p):
                raise DeviceError(f"{self._describe()}: {what} is on '{device_of(x)}' but the parameters are on "
                                  f"'{device_of(p)}'; move the input with minires.to_device(x, '{device_of(p)}') "
                                  f"or the model with model.to('{device_of(x)}')")
            if x.dtype != p.dtype:
                raise TypeError(f"{self._describe()}: {what} has dtype {x.dtype} but the parameters are {p.dtype}; "
                                f"cast the input with x.astype(np.{p.dtype.name}) or the model with "
                                f"model.to(dtype=np.{x.dtype.name})")

    def extra_repr(self):
        return ""

    def __repr__(self):
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            lines.append("  (" + name + "): " + repr(child).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"


class Sequential(Module):
    """Children called one after another; backward walks them in reverse."""

    def __init__(self, *modules):
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def __getitem__(self, i):
        return self.children()[i]

    def __len__(self):
        return len(self.children())

    def __iter__(self):
        return iter(self.children())

    def forward(self, x):
        for m in self.children():
            x = m.forward(x)
        return x

    def backward(self, grad_out):
        for m in reversed(self.children()):
            grad_out = m.backward(grad_out)
        return grad_out
