"""What the figures of minires/teach/diagrams.py share: their texts, a model's traced shapes, boxes.

A figure never types a number the code could contradict. It runs the code -- a forward on
zeros (``trace``), the modules of a real model (``network_facts``, ``block_facts``) -- and
draws what came back. Its texts (titles, axis names, legends) are a module-level dict per
figure; ``texts`` lays a caller's ``labels`` over it, so another edition of the book can pass
translations. Layer names, shapes and numbers are never translated.
"""
import numpy as np

from ..models import ShortcutA
from ..nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU
from ..viz import finish_figure, pyplot
from .summary import trace as summary_trace

SHORTCUT_COLORS = {"identity": "#2b6cb0", "projection": "#c05621", "zero-pad": "#6b46c1"}
LAYER_COLORS = {"Conv2d": "#bee3f8", "BatchNorm2d": "#fefcbf", "ReLU": "#c6f6d5", "MaxPool2d": "#fed7d7",
                "AdaptiveAvgPool2d": "#fed7d7", "Linear": "#e9d8fd", "Flatten": "#edf2f7"}


def texts(defaults, labels):
    """A figure's texts: its ``defaults`` dict with ``labels`` laid over it.

    A key the figure does not draw is refused: a translation with a typo would otherwise be
    ignored without a word.
    """
    if labels is None:
        return dict(defaults)
    unknown = sorted(set(labels) - set(defaults))
    if unknown:
        raise ValueError(f"labels: this figure draws no text called {unknown}; its texts are {sorted(defaults)}")
    return {**defaults, **labels}


def trace(model, input_shape):
    """[(name, module, input shape, output shape)] of every module below ``model``, in the order the
    forward called them (a parent before its children); shapes without the batch axis.

    minires/teach/summary.py:trace on zeros of batch 1 (eval mode, no gradients kept, the model
    given back as it was).
    """
    x = np.zeros((1,) + tuple(input_shape), dtype=np.float32)
    return [(name, m, x_shape[1:], y_shape[1:]) for name, m, x_shape, y_shape in summary_trace(model, x)]


def describe(m):
    """A layer in a few characters, read from its attributes: '3x3, 64 /2', 'max 3x3 /2', 'fc 512->1000'."""
    if isinstance(m, Conv2d):
        (KH, KW), (SH, _) = m.kernel_size, m.stride
        groups = f", {m.groups} groups" if m.groups > 1 else ""
        return f"{KH}x{KW}, {m.out_channels}" + (f" /{SH}" if SH > 1 else "") + groups
    if isinstance(m, MaxPool2d):
        (KH, KW), (SH, _) = m.kernel_size, m.stride
        return f"max {KH}x{KW}" + (f" /{SH}" if SH > 1 else "")
    if isinstance(m, Linear):
        return f"fc {m.in_features}->{m.out_features}"
    if isinstance(m, AdaptiveAvgPool2d):
        return "avg pool"
    if isinstance(m, ShortcutA):
        return f"pad {m.pad}+{m.pad} ch /2"
    if isinstance(m, BatchNorm2d):
        return f"bn, {m.num_features}"
    return {ReLU: "relu", Flatten: "flatten"}.get(type(m), type(m).__name__)


def shortcut_kind(block):
    """'identity', 'projection' (a 1x1 conv and batch norm), 'zero-pad' (option A) or 'none' (a plain block)."""
    if not getattr(block, "residual", True):
        return "none"
    if block.downsample is None:
        return "identity"
    return "zero-pad" if isinstance(block.downsample, ShortcutA) else "projection"


def network_facts(model, input_shape):
    """What a ResNet's diagram shows, read from the model and one forward on zeros of ``input_shape`` (C, H, W).

    ``{"stem": [(name, type, description, output shape)], "stages": [{"name", "out_shape", "blocks":
    [{"name", "type", "convs", "shortcut", "shortcut_layer", "in_shape", "out_shape"}]}], "head": [...],
    "blocks": count, "dashed": shortcuts that are not the identity, "output": shape}``.
    """
    shapes = {name: (x, y) for name, _, x, y in trace(model, input_shape)}
    stage_ids = {id(s) for s in model.stages()}
    children = list(model.named_children())
    first = next(i for i, (_, m) in enumerate(children) if id(m) in stage_ids)
    last = max(i for i, (_, m) in enumerate(children) if id(m) in stage_ids)
    plain = [(n, type(m).__name__, describe(m), shapes[n][1]) for n, m in children
             if n in shapes and id(m) not in stage_ids]
    stages = []
    for sname, stage in children[first:last + 1]:
        blocks = []
        for bname, block in stage.named_children():
            name = f"{sname}.{bname}"
            convs = [describe(m) for _, m in block.named_children() if isinstance(m, Conv2d)]
            kind = shortcut_kind(block)
            layer = describe(block.downsample[0] if kind == "projection" else block.downsample) \
                if kind in ("projection", "zero-pad") else None
            blocks.append(dict(name=name, type=type(block).__name__, convs=convs, shortcut=kind, shortcut_layer=layer,
                               in_shape=shapes[name][0], out_shape=shapes[name][1]))
        stages.append(dict(name=sname, out_shape=shapes[sname][1], blocks=blocks))
    blocks = [b for s in stages for b in s["blocks"]]
    head_names = {n for n, _ in children[last + 1:]}
    return dict(stem=[p for p in plain if p[0] not in head_names], stages=stages,
                head=[p for p in plain if p[0] in head_names], blocks=len(blocks),
                dashed=sum(b["shortcut"] not in ("identity", "none") for b in blocks),
                output=blocks[-1]["out_shape"] if not head_names else plain[-1][3])


def block_facts(block, input_shape):
    """A residual block's layers in the order its forward calls them, from one forward on zeros.

    ``{"main": [(name, type, description, output shape)], "shortcut": [...] (empty for the
    identity), "after_add": the layer after the sum, "kind", "in_shape", "out_shape"}``.
    """
    calls = trace(block, input_shape)
    own = [(n, type(m).__name__, describe(m), y) for n, m, _, y in calls if "." not in n]   # the block's children
    main = [row for row in own if row[0] != "downsample"]
    inner = [(n, type(m).__name__, describe(m), y) for n, m, _, y in calls if n.startswith("downsample.")]
    shortcut = inner or [row for row in own if row[0] == "downsample"]       # a Sequential's layers, or ShortcutA
    return dict(main=main[:-1], after_add=main[-1], shortcut=shortcut, kind=shortcut_kind(block),
                in_shape=tuple(input_shape), out_shape=main[-1][3])


# ----- drawing: boxes and arrows in a coordinate system of inches -----

def mpl_patches():
    """matplotlib.patches, once minires/viz.py:pyplot has chosen a backend (matplotlib is an extra)."""
    pyplot()
    import matplotlib.patches
    return matplotlib.patches


def canvas(width, height):
    """A figure of ``width`` x ``height`` inches whose one axes spans it, 1 data unit = 1 inch, no frame."""
    fig = pyplot().figure(figsize=(width, height))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


def box(ax, x, y, w, h, text, color="#edf2f7", fontsize=7.5, **kw):
    """A rounded box centred on (x, y), ``text`` inside; returns the patch."""
    patch = mpl_patches().FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.06",
                                   facecolor=color, edgecolor="#4a5568", lw=0.8, **kw)
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)     # the font: rcParams (DejaVu Sans)
    return patch


def arrow(ax, start, end, dashed=False, color="#4a5568", lw=1.0, style="-|>", **kw):
    """An arrow from ``start`` to ``end`` (dashed: a shortcut that changes the shape); returns the patch."""
    patch = mpl_patches().FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=8, color=color, lw=lw,
                                    linestyle="--" if dashed else "-", shrinkA=0, shrinkB=0, **kw)
    ax.add_patch(patch)
    return patch


def number_grid(ax, values, title=None, cmap="Blues", fmt="{:g}", highlight=None, vmin=None, vmax=None):
    """A 2-D array as a heat map with its numbers written in; ``highlight``: (row0, col0, rows, cols) outlined."""
    values = np.asarray(values)
    ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    lo, hi = np.nanmin(values), np.nanmax(values)
    for (r, c), v in np.ndenumerate(values):
        dark = hi > lo and (v - lo) / (hi - lo) > 0.6
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    if highlight is not None:
        r0, c0, nr, nc = highlight
        rect = mpl_patches().Rectangle((c0 - 0.5, r0 - 0.5), nc, nr, fill=False, lw=2.5,
                                                     edgecolor="#e53e3e")
        ax.add_patch(rect)


def shape_text(shape):
    """(64, 56, 56) -> '(64, 56, 56)'; a 1-tuple without its trailing comma."""
    return "(" + ", ".join(str(s) for s in shape) + ")"


def finish(fig, path):
    """Save to ``path`` (atomically, minires/viz.py:finish_figure) when given; the Figure."""
    return finish_figure(fig, path)
