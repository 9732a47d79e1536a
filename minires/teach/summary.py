"""summary(model, input_shape): every layer with its output shape and parameter count.

It runs one forward pass on zeros (no gradients kept, in eval mode, then restores the
mode) and records what each module returned, so what it prints is what the network
really does, not what it was meant to do.
"""
import numpy as np

from ..backend import device_of, to_device
from ..nn import Module, no_grad


def summary(model, input_shape, depth=None, device=None, dtype=None):
    """A table (a string) of every module: name, type, output shape, parameters; then totals.

    ``input_shape``: (C, H, W), batch 1 is added, or (N, C, H, W). ``depth`` limits how
    deep the table goes (1: the stages, 2: the blocks ...; None: every layer).
    Shapes print as (N, C, H, W), PyTorch's order.
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: expected a minires Module, got {type(model).__name__}")
    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4:
        raise ValueError(f"summary: input_shape must be (C, H, W) or (N, C, H, W), got {tuple(input_shape)}")
    params = model.parameters()
    device = device or ("cpu" if not params else device_of(params[0].data))
    dtype = dtype or (np.float32 if not params else params[0].data.dtype)
    x = to_device(np.zeros(shape, dtype=dtype), device)

    outputs = {name: y for name, _, _, y in trace(model, x)}
    rows, named = [], [(name, m) for name, m in model.named_modules() if name]
    for name, m in named:
        level = name.count(".") + 1
        if depth is not None and level > depth:
            continue
        own = sum(int(p.data.size) for p in m.parameters())
        out = outputs.get(name)
        rows.append(("  " * (level - 1) + name, type(m).__name__, "-" if out is None else str(out), f"{own:,}"))

    total = model.num_parameters()
    widths = [max(len(r[i]) for r in rows + [("layer", "type", "output shape", "params")]) for i in range(4)]
    line = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}"
    rule = "-" * (sum(widths) + 6)
    text = [f"{type(model).__name__} summary, input {shape}", rule, line(("layer", "type", "output shape", "params")), rule]
    text += [line(r) for r in rows]
    text += [rule, f"total parameters: {total:,}",
             f"parameter memory: {total * np.dtype(dtype).itemsize / 2**20:.1f} MiB ({np.dtype(dtype).name})"]
    return "\n".join(text)


def trace(model, x):
    """[(name, module, input shape, output shape)] of every module below ``model`` that its forward
    called, in the order it called them (a parent before its children), the shapes as the arrays
    had them. What ``summary`` prints and the book's figures draw (minires/teach/diagrams_common.py).

    One forward of ``x`` in eval mode, keeping no gradients: each module's ``forward`` is shadowed
    for the pass by one that notes the shapes (and calls what was there: the class's forward, or
    the one a hook gave the module), then put back, and every module gets its mode back.
    """
    calls, named = [], [(name, m) for name, m in model.named_modules() if name]
    before = [m.__dict__.get("forward") for _, m in named]      # a hooked module's own forward, or None
    for name, m in named:
        _record(m, name, calls)
    was_training = [m.training for m in model.modules()]
    try:
        model.eval()
        with no_grad():
            model.forward(x)
    finally:
        for (_, m), forward in zip(named, before):
            if forward is None:
                del m.forward                                    # back to the class's forward
            else:
                m.forward = forward                              # back to the hooks' forward
        for m, mode in zip(model.modules(), was_training):
            m.training = mode
    return [tuple(c) for c in calls]


def _record(module, name, calls):
    """Shadow ``module.forward`` with one that notes (name, module, input shape, output shape)."""
    forward = module.forward                 # bound: the class's, or the instance's own (hooks)

    def recording_forward(x, *args, **kwargs):
        entry = [name, module, tuple(int(s) for s in x.shape), None]
        calls.append(entry)                  # on the way in: a parent before its children
        y = forward(x, *args, **kwargs)
        entry[3] = tuple(int(s) for s in y.shape)
        return y

    module.forward = recording_forward       # an instance attribute: put back after the pass
