"""Figures of the convolution's machinery, each computed by the library's own functions.

    draw_im2col         the windows of a small image unrolled into columns (minires/nn/im2col.py:im2col)
    draw_col2im         how many windows cover each pixel: col2im of ones (minires/nn/im2col.py:col2im)
    draw_same_padding   TensorFlow's "same" against symmetric padding at stride 2 (minires/nn/padding.py)
    draw_conv_matmul    a convolution as one matrix multiply, with a real layer's shapes (minires/nn/conv.py)
    draw_grouped_conv   which output channels see which input channels: ResNeXt's 32 groups, measured
"""
import numpy as np

from ..models import resnet18, resnet50, resnext50_32x4d
from ..nn import col2im, im2col, no_grad
from ..nn.conv import conv_forward
from ..nn.im2col import out_size
from ..nn.padding import same_padding
from ..viz import pyplot
from .diagrams_common import arrow, canvas, finish, mpl_patches, number_grid, texts, trace

IM2COL_LABELS = {"title": "im2col: every {k}x{k} window of a {h}x{w} image becomes one column "
                          "({rows} x {cols} matrix)",
                 "image": "input x[0, 0] (its values number the pixels)",
                 "columns": "col.reshape(C*KH*KW, N*OH*OW)",
                 "rows": "row (c, i, j): filter entry", "cols": "column (n, oh, ow): output pixel",
                 "window": "window (oh, ow) = {window} is column {column}"}


def im2col_facts(size=4, kernel=3, stride=1, padding=0):
    """The real im2col of a (1, 1, size, size) image numbered 1, 2, ...: ``{"x", "matrix", "OH", "OW"}``."""
    x = np.arange(1, size * size + 1, dtype=np.float64).reshape(1, 1, size, size)
    col = im2col(x.transpose(1, 0, 2, 3), kernel, kernel, stride, stride, padding, padding)   # (C, KH, KW, N, OH, OW)
    C, KH, KW, N, OH, OW = col.shape
    return dict(x=x, matrix=col.reshape(C * KH * KW, N * OH * OW), OH=OH, OW=OW)


def draw_im2col(path=None, labels=None, window=(0, 1), size=4, kernel=3):
    """The input with one window outlined, and the column matrix im2col made of it, that column outlined."""
    t = texts(IM2COL_LABELS, labels)
    f = im2col_facts(size, kernel)
    oh, ow = window
    column = oh * f["OW"] + ow
    fig, (a, b) = pyplot().subplots(1, 2, figsize=(8.5, 4.6), gridspec_kw={"width_ratios": [1, 1.1]})
    number_grid(a, f["x"][0, 0], t["image"], highlight=(oh, ow, kernel, kernel))
    number_grid(b, f["matrix"], t["columns"], highlight=(0, column, kernel * kernel, 1))
    b.set_yticks(range(kernel * kernel), [f"(0, {i}, {j})" for i in range(kernel) for j in range(kernel)], fontsize=7)
    b.set_xticks(range(f["OH"] * f["OW"]), [f"(0,{i},{j})" for i in range(f["OH"]) for j in range(f["OW"])],
                 fontsize=7, rotation=35)
    b.set_ylabel(t["rows"], fontsize=8)
    b.set_xlabel(t["cols"], fontsize=8)
    a.set_xlabel(t["window"].format(window=window, column=column), fontsize=8, color="#e53e3e")
    fig.suptitle(t["title"].format(k=kernel, h=size, w=size, rows=f["matrix"].shape[0], cols=f["matrix"].shape[1]),
                 fontsize=10.5, weight="bold")
    fig.tight_layout()
    return finish(fig, path)


COL2IM_LABELS = {"title": "col2im adds: how many windows cover each pixel of a {h}x{w} image "
                          "(col2im of a column matrix of ones)",
                 "panel": "{k}x{k} kernel, stride {s}, padding {p}: {windows} windows",
                 "note": "A pixel's gradient is the sum over every window that read it: the backward must add, "
                         "never overwrite."}


def col2im_facts(size=5, kernel=3, settings=((1, 1), (2, 1))):
    """For each (stride, padding): the real col2im of ones, i.e. the number of windows covering each pixel."""
    found = []
    for s, p in settings:
        OH, OW = out_size(size, kernel, s, p), out_size(size, kernel, s, p)
        ones = np.ones((1, kernel, kernel, 1, OH, OW))
        found.append(dict(stride=s, padding=p, windows=OH * OW, counts=col2im(ones, size, size, s, s, p, p)[0, 0]))
    return found


def draw_col2im(path=None, labels=None, size=5, kernel=3, settings=((1, 1), (2, 1))):
    """Heat maps of the window count per pixel, one per (stride, padding) in ``settings``."""
    t = texts(COL2IM_LABELS, labels)
    facts = col2im_facts(size, kernel, settings)
    fig, axes = pyplot().subplots(1, len(facts), figsize=(4.2 * len(facts), 4.6))
    for ax, f in zip(np.atleast_1d(axes), facts):
        number_grid(ax, f["counts"], t["panel"].format(k=kernel, s=f["stride"], p=f["padding"], windows=f["windows"]),
                    cmap="Oranges", vmin=0)
    fig.suptitle(t["title"].format(h=size, w=size), fontsize=10.5, weight="bold")
    fig.text(0.5, 0.03, t["note"], ha="center", fontsize=8.5, color="#4a5568")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return finish(fig, path)


PADDING_LABELS = {"title": "An even input ({size}) at stride {stride}, kernel {kernel}: where the padding goes",
                  "same": "TensorFlow/Keras padding='same': {before} before, {after} after -> {out} outputs",
                  "symmetric": "PyTorch padding={p}: {before} before, {after} after -> {out} outputs",
                  "window": "out {o}", "unread": "never read",
                  "stem": "The 7x7/2 stem on {stem}: 'same' pads ({sb}, {sa}), PyTorch's padding=3 pads (3, 3): "
                          "the two read different pixels, so their weights do not transfer without a shift."}


def padding_facts(size=8, kernel=3, stride=2):
    """Both rules for one axis: ``{"same": {...}, "symmetric": {...}}``, each with its (before, after),
    output count and each window's first position (negative: in the padding). From
    minires/nn/padding.py:same_padding and minires/nn/im2col.py:out_size."""
    before, after = same_padding(size, kernel, stride)
    p = (kernel - 1) // 2
    found = {}
    for name, (b, a) in (("same", (before, after)), ("symmetric", (p, p))):
        out = out_size(size + b + a, kernel, stride, 0)
        starts = [-b + stride * o for o in range(out)]
        read = {i for s0 in starts for i in range(s0, s0 + kernel)}
        found[name] = dict(before=b, after=a, out=out, starts=starts,
                           unread=[i for i in list(range(-b, 0)) + list(range(size, size + a)) if i not in read])
    found["stem"] = same_padding(224, 7, 2)
    return found


def draw_same_padding(path=None, labels=None, size=8, kernel=3, stride=2):
    """Two rows of pixels, the padding grey, each window of each rule a bar beneath its pixels."""
    t = texts(PADDING_LABELS, labels)
    f = padding_facts(size, kernel, stride)
    lo = -max(f["same"]["before"], f["symmetric"]["before"])
    hi = size + max(f["same"]["after"], f["symmetric"]["after"])
    cell, x0 = 0.55, 0.6
    height = 1.5 + 2 * (1.0 + 0.28 * max(f["same"]["out"], f["symmetric"]["out"]))
    fig, ax = canvas(x0 + cell * (hi - lo) + 0.6, height)
    ax.text(0.15, height - 0.35, t["title"].format(size=size, stride=stride, kernel=kernel), fontsize=10.5,
            weight="bold")
    y = height - 1.0
    for name in ("same", "symmetric"):
        r = f[name]
        ax.text(0.15, y, t[name].format(p=(kernel - 1) // 2, **r), fontsize=9)
        y -= 0.45
        for i in range(lo, hi):
            pad = i < -r["before"] or i >= size + r["after"]
            if pad:
                continue
            inside = 0 <= i < size
            x = x0 + cell * (i - lo)
            ax.add_patch(mpl_patches().Rectangle((x, y - 0.18), cell, 0.36, facecolor="white" if inside else "#cbd5e0",
                                                 edgecolor="#4a5568", hatch=None if inside else "//", lw=0.8))
            ax.text(x + cell / 2, y, str(i) if inside else "0", ha="center", va="center", fontsize=8)
            if i in r["unread"]:
                ax.text(x + cell / 2, y + 0.28, t["unread"], ha="center", fontsize=7, color="#c53030")
        for o, s0 in enumerate(r["starts"]):
            yb = y - 0.36 - 0.28 * o
            arrow(ax, (x0 + cell * (s0 - lo) + 0.05, yb), (x0 + cell * (s0 + kernel - lo) - 0.05, yb), style="|-|",
                  color="#2b6cb0")
            ax.text(x0 + cell * (s0 + kernel - lo) + 0.05, yb, t["window"].format(o=o), va="center", fontsize=7)
        y -= 0.55 + 0.28 * len(r["starts"])
    sb, sa = f["stem"]
    ax.text(0.15, 0.2, t["stem"].format(stem=224, sb=sb, sa=sa), fontsize=7.5, color="#4a5568")
    return finish(fig, path)


CONV_MATMUL_LABELS = {"title": "A convolution is one matrix multiply: {model}'s {layer} on an input {inp}",
                      "weights": "weights W\n{O} x {K}", "columns": "columns (im2col)\n{K} x {P}",
                      "output": "output Y\n{O} x {P}",
                      "rows_w": "O = {O}", "k": "C*KH*KW = {C}*{KH}*{KW} = {K}", "p": "N*OH*OW = {N}*{OH}*{OW} = {P}",
                      "note": "Y reshaped is the output (N, O, OH, OW) = {out}. The columns hold {ratio:.2f} times "
                              "the input's values: each pixel is copied once per window that reads it."}


def conv_matmul_facts(layer="layer2.0.conv1", model_name="resnet18"):
    """The shapes of W, the columns and Y for one real layer, from minires/nn/conv.py:conv_forward
    run on zeros of the shape the layer sees inside the network (224x224 input)."""
    model = {"resnet18": resnet18, "resnet50": resnet50}[model_name]()
    calls = {name: (m, x, y) for name, m, x, y in trace(model, (3, 224, 224))}
    conv, x_shape, y_shape = calls[layer]
    x = np.zeros((1,) + x_shape, dtype=np.float32)
    y, (col, w, *_) = conv_forward(x, conv.weight.data, None, conv.stride, conv.padding, conv.groups)
    O, C, KH, KW = w.shape
    return dict(model=model_name, layer=layer, input=x.shape, output=y.shape, W=(O, col.shape[1]),
                columns=col.shape[1:], Y=(O, col.shape[2]), O=O, C=C, KH=KH, KW=KW, N=1,
                OH=y.shape[2], OW=y.shape[3], ratio=col.size / x.size)


def draw_conv_matmul(path=None, labels=None, layer="layer2.0.conv1", model_name="resnet18"):
    """W @ columns = Y drawn to scale, the sides labelled with the shapes of a real layer."""
    t = texts(CONV_MATMUL_LABELS, labels)
    f = conv_matmul_facts(layer, model_name)
    O, K, P = f["W"][0], f["W"][1], f["Y"][1]
    scale = 3.4 / max(O, K, P)
    w_o, w_k, w_p = O * scale, K * scale, P * scale
    width, height = 1.0 + w_k + w_p * 2 + 2.2, 2.0 + max(w_k, w_o)
    fig, ax = canvas(width, height)
    ax.text(0.15, height - 0.35, t["title"].format(model=f["model"], layer=layer, inp=tuple(f["input"])),
            fontsize=10.5, weight="bold")
    top = height - 1.2
    x = 1.0
    for key, (w, h), color, side in (("weights", (w_k, w_o), "#bee3f8", "rows_w"),
                                     ("columns", (w_p, w_k), "#fefcbf", "k"),
                                     ("output", (w_p, w_o), "#c6f6d5", "rows_w")):
        ax.add_patch(mpl_patches().Rectangle((x, top - h), w, h, facecolor=color, edgecolor="#2d3748"))
        ax.text(x + w / 2, top - h / 2, t[key].format(O=O, K=K, P=P), ha="center", va="center", fontsize=8.5)
        ax.text(x - 0.08, top - h / 2, t[side].format(**f, K=K), ha="right", va="center", fontsize=7.5, rotation=90)
        ax.text(x + w / 2, top + 0.08, t["p" if key != "weights" else "k"].format(**f, K=K, P=P), ha="center",
                fontsize=7.5)
        sign = {"weights": "@", "columns": "="}.get(key)
        if sign:
            ax.text(x + w + 0.45, top - min(w_o, h) / 2, sign, fontsize=16, ha="center", va="center")
        x += w + 0.9
    ax.text(0.15, 0.3, t["note"].format(out=tuple(f["output"]), ratio=f["ratio"]), fontsize=8, color="#4a5568")
    return finish(fig, path)


GROUPED_LABELS = {"title": "Grouped convolution: which input channels each output channel sees (measured)",
                  "panel": "{model} {layer}: {C} -> {O} channels, groups={G}\n{params:,} weights",
                  "xlabel": "input channel", "ylabel": "output channel",
                  "note": "Each group of {per} input channels has its own {per} filters: {G} small convolutions "
                          "side by side (ResNeXt's cardinality). Dense at the same width: {dense:,} weights."}


def grouped_facts():
    """For resnext50_32x4d's and resnet50's layer1.0.conv2: the connection matrix (output x input
    channel), found by running the conv on one-hot inputs, its groups and its weight count."""
    found = []
    for name, builder in (("resnext50_32x4d", resnext50_32x4d), ("resnet50", resnet50)):
        conv = builder().layer1[0].conv2
        C = conv.in_channels
        x = np.eye(C, dtype=np.float32).reshape(C, C, 1, 1)         # image c: 1 on channel c only
        with no_grad():
            y = conv(x)                                              # (C, O, 1, 1): the 3x3's centre tap
        found.append(dict(model=name, layer="layer1.0.conv2", C=C, O=conv.out_channels, G=conv.groups,
                          params=conv.weight.data.size, connected=y[:, :, 0, 0].T != 0,
                          dense=conv.out_channels * C * conv.kernel_size[0] * conv.kernel_size[1]))
    return found


def draw_grouped_conv(path=None, labels=None):
    """The connection matrices of ResNeXt's grouped 3x3 and ResNet-50's dense one, side by side."""
    t = texts(GROUPED_LABELS, labels)
    facts = grouped_facts()
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 5.6))
    for ax, f in zip(axes, facts):
        ax.imshow(f["connected"], cmap="Blues", interpolation="nearest", vmin=0, vmax=1)
        ax.set_title(t["panel"].format(**f), fontsize=9)
        ax.set(xlabel=t["xlabel"], ylabel=t["ylabel"])
    g = facts[0]
    fig.suptitle(t["title"], fontsize=10.5, weight="bold")
    fig.text(0.5, 0.03, t["note"].format(per=g["C"] // g["G"], G=g["G"], dense=g["dense"]), ha="center",
             fontsize=8.5, color="#4a5568")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return finish(fig, path)
