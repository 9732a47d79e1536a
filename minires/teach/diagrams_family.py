"""Figures that compare the members of the ResNet family, each counted from the built models.

    draw_params_per_stage    where the parameters are: stem, layer1..4, fc of resnet18 ... resnet152
    draw_depth_comparison    blocks per stage, and the depth counted from the layers (18 ... 152, 20 ... 1202)
    draw_receptive_field     how far each layer of ResNet-18 sees into the image
    draw_gradient_norms      plain against residual: each conv's weight-gradient norm at initialisation
"""
import functools

import numpy as np

from .. import nn
from ..models import (CifarResNet, resnet18, resnet34, resnet50, resnet101, resnet152, resnet20, resnet32, resnet44,
                      resnet56, resnet110, resnet1202)
from ..nn import Conv2d, Linear, MaxPool2d
from ..parallel.blas import blas_threads
from ..viz import pyplot
from .diagrams_common import finish, texts, trace

IMAGENET = (resnet18, resnet34, resnet50, resnet101, resnet152)
CIFAR = (resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202)

PARAMS_LABELS = {"title": "Where the parameters are: each part of the ImageNet ResNets, counted from the models",
                 "xlabel": "parameters (millions)", "stem": "stem (conv1, bn1)", "fc": "fc (1000 classes)",
                 "total": "{total:.1f} M"}


@functools.lru_cache(maxsize=None)
def model_counts(builder):
    """What the family figures count in ``builder()``'s model, kept (building resnet152 takes a second, the
    counts are a few numbers): ``{"parts": {"stem", "layer1" ..., "fc": parameters}, "total", "blocks": per
    stage, "layers": every conv outside a shortcut and the fc, "block": the block's class name}``."""
    model = builder()
    parts = {"stem": model.conv1.num_parameters() + model.bn1.num_parameters()}
    parts.update({f"layer{i}": s.num_parameters() for i, s in enumerate(model.stages(), 1)})
    parts["fc"] = model.fc.num_parameters()
    layers = sum(isinstance(m, (Conv2d, Linear)) for name, m in model.named_modules() if "downsample" not in name)
    return dict(parts=parts, total=model.num_parameters(), blocks=[len(s) for s in model.stages()], layers=layers,
                block=type(model.stages()[0][0]).__name__)


def params_facts(builders=IMAGENET):
    """{name: {"parts": {"stem", "layer1" .. "layer4", "fc": parameter count}, "total"}} of each model;
    the parts add up to the model's num_parameters()."""
    return {b.__name__: {k: model_counts(b)[k] for k in ("parts", "total")} for b in builders}


def draw_params_per_stage(path=None, labels=None):
    """One stacked bar per model, one segment per part, the total at its end."""
    t = texts(PARAMS_LABELS, labels)
    facts = params_facts()
    fig, ax = pyplot().subplots(figsize=(10, 4))
    names = list(facts)
    parts = list(facts[names[0]]["parts"])
    colors = pyplot().get_cmap("tab10")
    left = np.zeros(len(names))
    for k, part in enumerate(parts):
        values = np.array([facts[n]["parts"][part] for n in names]) / 1e6
        ax.barh(names, values, left=left, color=colors(k), label=t.get(part, part))
        left += values
    for i, n in enumerate(names):
        ax.text(left[i] + 0.4, i, t["total"].format(total=facts[n]["total"] / 1e6), va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, left.max() * 1.12)
    ax.set(xlabel=t["xlabel"], title=t["title"])
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=len(parts), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return finish(fig, path)


DEPTH_LABELS = {"title": "Depth: blocks per stage, and the weighted layers counted in each model",
                "imagenet": "ImageNet ResNets (basic blocks up to 34, bottlenecks from 50)",
                "cifar": "The paper's CIFAR-10 nets (6n+2, n blocks per stage)",
                "xlabel": "blocks", "depth": "{layers} layers", "log": "blocks in all (log scale)",
                "cifar_depth": "{layers} layers: {stages} stages x {n} blocks"}


def depth_facts(builders=IMAGENET + CIFAR):
    """{name: {"blocks": blocks per stage, "layers": the weighted layers on the main path (every conv
    outside a shortcut, and the fc), "block": the block's class}} counted in each built model."""
    return {b.__name__: {k: model_counts(b)[k] for k in ("blocks", "layers", "block")} for b in builders}


def draw_depth_comparison(path=None, labels=None):
    """ImageNet models: stacked bars of blocks per stage. CIFAR models: all their blocks (log scale),
    n per stage written beside. The depth beside each bar is counted in the model."""
    t = texts(DEPTH_LABELS, labels)
    facts = depth_facts()
    fig, (a, b) = pyplot().subplots(1, 2, figsize=(11, 4.2))
    colors = pyplot().get_cmap("Set2")
    names = [f.__name__ for f in IMAGENET]
    left = np.zeros(len(names))
    for s in range(4):
        counts = np.array([facts[n]["blocks"][s] for n in names])
        a.barh(names, counts, left=left, color=colors(s), edgecolor="white", label=f"layer{s + 1}")
        for i, c in enumerate(counts):
            a.text(left[i] + c / 2, i, str(c), ha="center", va="center", fontsize=7)
        left += counts
    for i, n in enumerate(names):
        a.text(left[i] + 0.6, i, t["depth"].format(layers=facts[n]["layers"]), va="center", fontsize=8)
    a.legend(fontsize=7, loc="upper right")
    a.set(xlabel=t["xlabel"], xlim=(0, left.max() * 1.35))
    names = [f.__name__ for f in CIFAR]
    totals = np.array([sum(facts[n]["blocks"]) for n in names])
    b.barh(names, totals, color=colors(5))
    for i, n in enumerate(names):
        blocks = facts[n]["blocks"]
        b.text(totals[i] * 1.15, i, t["cifar_depth"].format(layers=facts[n]["layers"], stages=len(blocks),
                                                            n=blocks[0]), va="center", fontsize=8)
    b.set(xlabel=t["log"], xscale="log", xlim=(1, totals.max() * 40))
    for ax, key in ((a, "imagenet"), (b, "cifar")):
        ax.invert_yaxis()
        ax.set_title(t[key], fontsize=9)
    fig.suptitle(t["title"], fontsize=10.5, weight="bold")
    fig.tight_layout()
    return finish(fig, path)


FIELD_LABELS = {"title": "Receptive field through {model}: how many input pixels one position of each layer sees",
                "xlabel": "layer on the main path (convolutions and max-pool, in the order the forward calls them)",
                "ylabel": "receptive field (pixels, one side)", "input": "the input: {size} pixels",
                "jump": "{jump} px / step",
                "note": "(above each stage: the input pixels between neighbouring positions of its output)"}


def receptive_field_facts(model_name="resnet18", size=224):
    """[(layer name, kernel, stride, receptive field, jump)] along the main path of the model, in the
    order the forward calls the layers; the shortcuts (never wider than the path beside them) are skipped.

    r grows by (kernel - 1) * jump at each layer; jump (the input pixels between two neighbouring
    positions of the layer) multiplies by the stride.
    """
    model = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}[model_name]()
    r, jump, rows = 1, 1, []
    for name, m, _, _ in trace(model, (3, size, size)):
        if isinstance(m, (Conv2d, MaxPool2d)) and "downsample" not in name:
            (k, _), (s, _) = m.kernel_size, m.stride
            r, jump = r + (k - 1) * jump, jump * s
            rows.append((name, k, s, r, jump))
    return rows


def draw_receptive_field(path=None, labels=None, model_name="resnet18", size=224):
    """The receptive field after each layer, the stages shaded, the input size as a line."""
    t = texts(FIELD_LABELS, labels)
    rows = receptive_field_facts(model_name, size)
    fig, ax = pyplot().subplots(figsize=(11, 4.6))
    x = np.arange(len(rows))
    ax.plot(x, [r[3] for r in rows], "o-", ms=4)
    ax.axhline(size, color="#c53030", ls="--", lw=1)
    ax.text(0, size * 1.03, t["input"].format(size=size), color="#c53030", fontsize=8)
    ax.set_xticks(x, [r[0] for r in rows], rotation=70, fontsize=6.5)
    stages = [r[0].split(".")[0] for r in rows]
    for k, stage in enumerate(dict.fromkeys(stages)):
        idx = [i for i, s in enumerate(stages) if s == stage]
        if k % 2:
            ax.axvspan(idx[0] - 0.5, idx[-1] + 0.5, color="#edf2f7")
        jump = rows[idx[-1]][4]
        ax.text((idx[0] + idx[-1]) / 2, rows[-1][3] * 1.08, t["jump"].format(jump=jump) if len(idx) > 1 else
                str(jump), ha="center", fontsize=7, color="#4a5568")
    ax.annotate(str(rows[-1][3]), (x[-1], rows[-1][3]), textcoords="offset points", xytext=(-26, -3), fontsize=8)
    ax.set(ylabel=t["ylabel"], title=t["title"].format(model=model_name), ylim=(0, rows[-1][3] * 1.16))
    ax.set_xlabel(t["xlabel"] + "\n" + t["note"], fontsize=8.5)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return finish(fig, path)


NORMS_LABELS = {"title": "At initialisation: the gradient of each convolution's weights, plain-{depth} against "
                         "ResNet-{depth} (one backward, batch {N}, random {size}x{size} images)",
                "plain": "plain-{depth}: largest / smallest = {ratio:,.0f}",
                "resnet": "ResNet-{depth}: largest / smallest = {ratio:,.0f}",
                "xlabel": "convolution, input side first", "ylabel": "|dL/dW|"}


def gradient_norm_facts(depth=56, N=8, size=32, seed=0):
    """{"plain": [(conv name, |grad|)], "resnet": [...]} for CifarResNet of ``depth`` with and without
    shortcuts, the same seed, one training-mode forward and backward of a cross-entropy on random data."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, 3, size, size)).astype(np.float32)
    y = rng.integers(0, 10, N)
    found = {}
    with blas_threads(1):
        for kind in ("plain", "resnet"):
            nn.manual_seed(seed)
            model = CifarResNet((depth - 2) // 6, 10, residual=kind == "resnet")
            loss = nn.CrossEntropyLoss()
            loss(model(x), y)
            model.backward(loss.backward())
            found[kind] = [(name, float(np.linalg.norm(m.weight.grad))) for name, m in model.named_modules()
                           if isinstance(m, Conv2d)]
    return found


def draw_gradient_norms(path=None, labels=None, depth=56):
    """The two nets' per-layer gradient norms on a log scale."""
    t = texts(NORMS_LABELS, labels)
    N, size = 8, 32
    facts = gradient_norm_facts(depth, N, size)
    fig, ax = pyplot().subplots(figsize=(10, 4.4))
    for kind, style in (("plain", "o-"), ("resnet", "s-")):
        norms = np.array([v for _, v in facts[kind]])
        ax.plot(norms, style, ms=3, lw=1.2, label=t[kind].format(depth=depth, ratio=norms.max() / norms.min()))
    ax.set_yscale("log")
    ax.set(xlabel=t["xlabel"], ylabel=t["ylabel"])
    ax.set_title(t["title"].format(depth=depth, N=N, size=size), fontsize=9.5)
    ax.legend(fontsize=8.5)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return finish(fig, path)
