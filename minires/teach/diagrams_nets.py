"""Figures of whole networks and of their blocks, drawn from the models' own modules and shapes.

    draw_network       any ResNet or CIFAR ResNet: every block in order, its shortcut (solid:
                       identity, dashed: the shape changes), each stage's output shape
    draw_resnet34, draw_resnet50, draw_resnet20    the three the book shows
    draw_basic_block, draw_bottleneck_block        one block's layers, as its forward calls them
    draw_stride_placement                          v1 against v1.5: which conv of a bottleneck strides
    draw_shortcut_options                          the CIFAR nets' shortcut A (zero-pad) against B (projection)
"""
import numpy as np

from ..models import resnet20, resnet34, resnet50, resnet50_v1
from ..nn import Conv2d, no_grad
from ..viz import pyplot
from .diagrams_common import (LAYER_COLORS, SHORTCUT_COLORS, arrow, block_facts, box, canvas, finish, mpl_patches,
                              network_facts, shape_text, texts)

NETWORK_LABELS = {"title": "{model}: {blocks} blocks, {dashed} shortcuts that change the shape (dashed); "
                           "input {input}",
                  "stem": "stem", "head": "head", "input": "input", "identity": "identity shortcut",
                  "projection": "projection shortcut (1x1 conv, shape changes)",
                  "zero-pad": "zero-padding shortcut (option A, shape changes)",
                  "sum": "(+): main path + shortcut, then ReLU"}
RESNET34_LABELS = dict(NETWORK_LABELS, model="ResNet-34")
RESNET50_LABELS = dict(NETWORK_LABELS, model="ResNet-50 (bottleneck blocks)")
RESNET20_LABELS = dict(NETWORK_LABELS, model="ResNet-20 for CIFAR-10 (6n+2, n = 3)")

BOX_W, GAP, LEFT, RIGHT = 1.35, 0.55, 1.0, 1.35


def draw_network(model, input_shape, path=None, labels=None, defaults=NETWORK_LABELS):
    """One row for the stem, one per stage (its blocks left to right, each with its shortcut above
    it), one for the head: what ``network_facts(model, input_shape)`` finds. Returns the Figure."""
    t = texts(defaults, labels)
    facts = network_facts(model, input_shape)
    rows = [("stem", facts["stem"])] + [(s["name"], s) for s in facts["stages"]] + [("head", facts["head"])]
    widest = max(len(facts["stem"]), len(facts["head"]), *(len(s["blocks"]) for s in facts["stages"]))
    row_h = 1.25 if max(len(b["convs"]) for s in facts["stages"] for b in s["blocks"]) < 3 else 1.45
    width, height = LEFT + widest * (BOX_W + GAP) + GAP + RIGHT, 1.1 + row_h * len(rows)
    fig, ax = canvas(width, height)
    ax.text(0.15, height - 0.3, t["title"].format(model=t.get("model", type(model).__name__), blocks=facts["blocks"],
                                                  dashed=facts["dashed"], input=shape_text(input_shape)),
            fontsize=11, weight="bold", va="center")
    for i, (name, row) in enumerate(rows):
        y = height - 1.05 - row_h * (i + 0.5)
        label = t["stem"] if name == "stem" else t["head"] if name == "head" else name
        ax.text(0.15, y, label, fontsize=9, weight="bold", va="center")
        if isinstance(row, dict):
            _stage_row(ax, row, y, row_h)
        else:
            _layer_row(ax, row, y, t["input"] + " " + shape_text(input_shape) if name == "stem" else None)
    kinds = [k for k in ("identity", "projection", "zero-pad")
             if any(b["shortcut"] == k for s in facts["stages"] for b in s["blocks"])]
    _legend(ax, kinds, t, width, height)
    return finish(fig, path)


def _layer_row(ax, layers, y, first_text):
    """The stem or the head: one box per layer, its output shape beneath."""
    if first_text:
        ax.text(LEFT - 0.15, y + 0.42, first_text, fontsize=7, color="#4a5568")
    for j, (name, kind, desc, shape) in enumerate(layers):
        x = LEFT + GAP + j * (BOX_W + GAP) + BOX_W / 2
        box(ax, x, y, BOX_W, 0.5, name if desc.lower() == name.lower() else f"{name}\n{desc}",
            LAYER_COLORS.get(kind, "#edf2f7"))
        ax.text(x, y - 0.4, shape_text(shape), ha="center", fontsize=7, color="#2d3748")
        arrow(ax, (x - BOX_W / 2 - GAP + 0.05, y), (x - BOX_W / 2, y))


def _stage_row(ax, stage, y, row_h):
    """A stage: its blocks left to right, the shortcut of each drawn over it into the sum (+)."""
    h = row_h - 0.62
    x_end = LEFT
    for j, b in enumerate(stage["blocks"]):
        x = LEFT + GAP + j * (BOX_W + GAP) + BOX_W / 2
        left, right = x - BOX_W / 2, x + BOX_W / 2
        box(ax, x, y, BOX_W, h, "\n".join([b["name"]] + b["convs"]), "#ebf8ff" if b["type"] == "BasicBlock" else
            "#faf5ff", fontsize=7)
        arrow(ax, (left - GAP + 0.05, y), (left, y))
        dashed, color = b["shortcut"] != "identity", SHORTCUT_COLORS.get(b["shortcut"], "#4a5568")
        start, end, top = left - 0.14, right + 0.14, y + h / 2 + 0.14
        ax.plot([start, start, end], [y, top, top], color=color, lw=1.1, ls="--" if dashed else "-")
        arrow(ax, (end, top), (end, y + 0.07), dashed=dashed, color=color, lw=1.1)
        ax.add_patch(_sum_circle(end, y))
        if b["shortcut_layer"]:
            ax.text((start + end) / 2, top + 0.04, b["shortcut_layer"], ha="center", fontsize=6.5, color=color)
        x_end = right + GAP
    arrow(ax, (x_end - GAP + 0.21, y), (x_end, y))
    ax.text(x_end + 0.05, y, shape_text(stage["out_shape"]), va="center", fontsize=8, weight="bold")


def _sum_circle(x, y):
    """The (+) where the main path and the shortcut meet."""
    return mpl_patches().Circle((x, y), 0.07, facecolor="white", edgecolor="#2d3748", lw=0.9, zorder=3)


def _legend(ax, kinds, t, width, height):
    """One line per kind of shortcut in the figure, and what (+) means."""
    x, y = width - 4.3, height - 0.62
    for k in kinds:
        ax.plot([x, x + 0.4], [y, y], color=SHORTCUT_COLORS[k], ls="-" if k == "identity" else "--", lw=1.2)
        ax.text(x + 0.5, y, t[k], fontsize=7.5, va="center")
        y -= 0.18
    ax.text(x, y, t["sum"], fontsize=7.5, va="center")


def draw_resnet34(path=None, labels=None):
    """ResNet-34 on a 224x224 image: 16 basic blocks, 3 of them with a projection shortcut (dashed)."""
    return draw_network(resnet34(), (3, 224, 224), path, labels, RESNET34_LABELS)


def draw_resnet50(path=None, labels=None):
    """ResNet-50 on a 224x224 image: 16 bottleneck blocks, 4 projections (layer1.0 widens 64 -> 256)."""
    return draw_network(resnet50(), (3, 224, 224), path, labels, RESNET50_LABELS)


def draw_resnet20(path=None, labels=None):
    """The paper's CIFAR-10 ResNet-20 on a 32x32 image: 3 stages of n = 3 basic blocks, option A shortcuts."""
    return draw_network(resnet20(), (3, 32, 32), path, labels, RESNET20_LABELS)


BASIC_BLOCK_LABELS = {"title": "The basic block ({model}'s {identity} and {projection}): two 3x3 convolutions "
                               "and a shortcut",
                      "input": "input", "output": "output", "identity": "identity shortcut",
                      "projection": "projection shortcut (the shape changes)", "zero-pad": "zero-padding shortcut",
                      "sum": "sum"}
BOTTLENECK_LABELS = dict(BASIC_BLOCK_LABELS, title="The bottleneck block ({model}'s {identity} and {projection}): "
                                                   "1x1 reduce, 3x3, 1x1 expand, and a shortcut")


def draw_basic_block(path=None, labels=None):
    """resnet34's layer2.1 (identity shortcut) and layer2.0 (projection), layer by layer as their forward runs."""
    return _draw_block_pair(resnet34(), "resnet34", path, texts(BASIC_BLOCK_LABELS, labels))


def draw_bottleneck_block(path=None, labels=None):
    """resnet50's layer2.1 (identity shortcut) and layer2.0 (projection), layer by layer as their forward runs."""
    return _draw_block_pair(resnet50(), "resnet50", path, texts(BOTTLENECK_LABELS, labels))


def _draw_block_pair(model, model_name, path, t):
    """Two blocks of ``model``'s layer2 side by side, each from ``block_facts`` on its real input shape."""
    facts = network_facts(model, (3, 224, 224))
    stage = next(s for s in facts["stages"] if s["name"] == "layer2")
    pairs = [(stage["blocks"][1], model.layer2[1]), (stage["blocks"][0], model.layer2[0])]
    drawn = [block_facts(block, b["in_shape"]) for b, block in pairs]
    height = 1.0 + 0.46 * (max(len(d["main"]) for d in drawn) + 2) + 0.9
    fig, ax = canvas(11.0, height)
    ax.text(0.15, height - 0.3, t["title"].format(model=model_name, identity=pairs[0][0]["name"],
                                                  projection=pairs[1][0]["name"]), fontsize=11, weight="bold")
    for k, ((b, _), d) in enumerate(zip(pairs, drawn)):
        _draw_block(ax, d, b["name"], 2.3 + 5.6 * k, height - 0.9, t)
    return finish(fig, path)


def _draw_block(ax, d, name, cx, top, t):
    """One block as a column of layers (shapes on the left), its shortcut on the right into the sum."""
    ax.text(cx, top, f"{name}: {t['input']} {shape_text(d['in_shape'])}", ha="center", fontsize=9, weight="bold")
    step, w = 0.46, 1.9
    y = top - 0.45
    arrow(ax, (cx, top - 0.12), (cx, y + 0.15))
    for lname, kind, desc, shape in d["main"]:
        box(ax, cx, y, w, 0.3, f"{lname}   {desc}", LAYER_COLORS.get(kind, "#edf2f7"))
        ax.text(cx - w / 2 - 0.1, y, shape_text(shape), ha="right", va="center", fontsize=7, color="#4a5568")
        arrow(ax, (cx, y - 0.15), (cx, y - step + 0.15))
        y -= step
    sum_y = y + 0.02
    ax.add_patch(_sum_circle(cx, sum_y))
    ax.text(cx - 0.12, sum_y, t["sum"], ha="right", va="center", fontsize=7)
    arrow(ax, (cx, sum_y - 0.07), (cx, sum_y - step + 0.15))
    y = sum_y - step
    lname, kind, desc, shape = d["after_add"]
    box(ax, cx, y, w, 0.3, f"{lname}   {desc}", LAYER_COLORS.get(kind, "#edf2f7"))
    arrow(ax, (cx, y - 0.15), (cx, y - 0.42))
    ax.text(cx, y - 0.58, f"{t['output']} {shape_text(d['out_shape'])}", ha="center", fontsize=9, weight="bold")
    _draw_shortcut(ax, d, cx + w / 2 + 1.0, top - 0.2, sum_y, cx, t)


def _draw_shortcut(ax, d, sx, y_from, y_to, cx, t):
    """The shortcut: from the block's input down the right side into the sum, its layers on the way."""
    dashed, color = d["kind"] != "identity", SHORTCUT_COLORS.get(d["kind"], "#4a5568")
    ls = "--" if dashed else "-"
    ax.plot([cx, sx, sx], [y_from, y_from, y_to], color=color, ls=ls, lw=1.2)
    arrow(ax, (sx, y_to), (cx + 0.08, y_to), dashed=dashed, color=color, lw=1.2)
    mid = (y_from + y_to) / 2
    ax.text(sx + 0.1, y_from - 0.15, t[d["kind"]], fontsize=7.5, color=color, va="top")
    for i, (lname, kind, desc, shape) in enumerate(d["shortcut"]):
        y = mid + 0.2 - 0.45 * i
        box(ax, sx, y, 1.55, 0.3, f"{lname}  {desc}", LAYER_COLORS.get(kind, "#edf2f7"), zorder=3)
        ax.text(sx + 0.85, y, shape_text(shape), va="center", fontsize=7, color="#4a5568")


STRIDE_LABELS = {"title": "Where the first bottleneck of a stage halves the size: v1 (the paper) against v1.5 "
                          "(torchvision)",
                 "v1": "resnet50_v1: stride on the first 1x1", "v1.5": "resnet50: stride on the 3x3",
                 "note": "A 1x1 convolution with stride 2 reads one position in four and skips the rest; "
                         "on the 3x3 every input position is read. The shortcut ({shortcut}) strides in both."}


def stride_facts(model):
    """{first block of each stage: [names of its convolutions with stride 2]}, read from the modules."""
    found = {}
    for stage_name, stage in model.named_children():
        if not any(stage is s for s in model.stages()):
            continue
        first_name, first = next(stage.named_children())
        found[f"{stage_name}.{first_name}"] = [n for n, m in first.named_modules()
                                               if isinstance(m, Conv2d) and m.stride != (1, 1)]
    return found


def draw_stride_placement(path=None, labels=None):
    """resnet50_v1 against resnet50: the convolutions of each stage's first block, the strided one red."""
    t = texts(STRIDE_LABELS, labels)
    models = [("v1", resnet50_v1()), ("v1.5", resnet50())]
    facts = {key: stride_facts(m) for key, m in models}
    rows = [name for name, strided in facts["v1.5"].items() if strided]
    H = 1.6 + 0.85 * len(rows)
    fig, ax = canvas(11.0, H)
    ax.text(0.15, H - 0.3, t["title"], fontsize=11, weight="bold")
    for k, (key, model) in enumerate(models):
        x0 = 1.3 + 4.9 * k
        ax.text(x0 + 2.0, H - 0.75, t[key], ha="center", fontsize=9, weight="bold")
        for i, name in enumerate(rows):
            y = H - 1.3 - 0.85 * i
            if k == 0:
                ax.text(0.15, y, name, fontsize=9, va="center")
            block = dict(model.named_modules())[name]
            convs = [(n, m) for n, m in block.named_modules() if isinstance(m, Conv2d)]
            for j, (n, m) in enumerate(convs):
                strided = n in facts[key][name]
                text = f"{n}\n{m.kernel_size[0]}x{m.kernel_size[1]}" + (f" /{m.stride[0]}" if strided else "")
                box(ax, x0 + 0.45 + 1.03 * j + 0.15 * n.startswith("downsample"), y, 0.95, 0.5, text,
                    "#feb2b2" if strided else "#edf2f7", fontsize=7)
    shortcut = ", ".join(sorted({n for s in facts["v1"].values() for n in s if n.startswith("downsample")}))
    ax.text(0.15, 0.3, t["note"].format(shortcut=shortcut), fontsize=8, color="#4a5568")
    return finish(fig, path)


SHORTCUT_LABELS = {"title": "CIFAR ResNet-20, {block}: where the shape changes {inp} -> {out}",
                   "A": "option A (shortcut='A'): subsample, zero-pad\nthe new channels; {params} parameters",
                   "B": "option B (shortcut='B'): 1x1 convolution /2\nand batch norm; {params} parameters",
                   "xlabel": "input channel", "ylabel": "output channel",
                   "note": "Each matrix is measured: the shortcut's response (eval mode) to an input "
                           "that is 1 on one channel and 0 elsewhere. Whole net: {a_total:,} parameters with A, "
                           "{b_total:,} with B."}


def shortcut_facts(block="layer2.0"):
    """For resnet20 with shortcut 'A' and 'B': the shortcut of ``block``, its parameters, and its
    measured response matrix (output channel x input channel, from one-hot inputs)."""
    found = {}
    for option in ("A", "B"):
        model = resnet20(shortcut=option)
        model.eval()
        shortcut = dict(model.named_modules())[block].downsample
        C = dict(model.named_modules())[block].conv1.in_channels
        x = np.repeat(np.repeat(np.eye(C, dtype=np.float32)[:, :, None, None], 2, 2), 2, 3)   # (C, C, 2, 2)
        with no_grad():
            y = shortcut(x)                                                                # (C, O, 1, 1)
        found[option] = dict(matrix=y[:, :, 0, 0].T, params=shortcut.num_parameters(), in_channels=C,
                             out_channels=y.shape[1], total=model.num_parameters())
    return found


def draw_shortcut_options(path=None, labels=None, block="layer2.0"):
    """Option A against option B for the CIFAR nets, as two measured channel-routing matrices."""
    t = texts(SHORTCUT_LABELS, labels)
    facts = shortcut_facts(block)
    shapes = network_facts(resnet20(), (3, 32, 32))
    b = next(b for s in shapes["stages"] for b in s["blocks"] if b["name"] == block)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 6))
    for ax, option, cmap in zip(axes, ("A", "B"), ("Greys", "RdBu_r")):
        m = facts[option]["matrix"]
        lim = float(np.abs(m).max())
        ax.imshow(m, cmap=cmap, vmin=-lim if option == "B" else 0, vmax=lim)
        ax.set_title(t[option].format(params=facts[option]["params"]), fontsize=8.5)
        ax.set(xlabel=t["xlabel"], ylabel=t["ylabel"])
    fig.suptitle(t["title"].format(block=block, inp=shape_text(b["in_shape"]), out=shape_text(b["out_shape"])),
                 fontsize=11, weight="bold")
    fig.text(0.5, 0.02, t["note"].format(a_total=facts["A"]["total"], b_total=facts["B"]["total"]), ha="center",
             fontsize=8, color="#4a5568", wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return finish(fig, path)
