"""Figures of single layers at work, each computed by the layer's own textbook functions.

    draw_batch_norm        per-channel statistics before and after (minires/nn/norm.py:batchnorm_forward)
    draw_relu_maxpool      where ReLU's and max-pool's gradients go (relu_backward, maxpool_backward)
    draw_layouts           NCHW (PyTorch, minires) against NHWC (Keras's channels_last) in memory
"""
import numpy as np

from ..keras.models import DATA_FORMATS
from ..nn.activation import relu_backward, relu_forward
from ..nn.norm import batchnorm_forward
from ..nn.pool import maxpool_backward, maxpool_forward
from ..viz import pyplot
from .diagrams_common import canvas, finish, mpl_patches, number_grid, texts

BATCH_NORM_LABELS = {"title": "Batch norm: one mean and one variance per channel, over N*H*W = {N}*{H}*{W} = "
                              "{count} values each",
                     "before": "x (training batch)", "after": "y = (x - mean) / sqrt(var + eps)   (weight 1, bias 0)",
                     "channel": "channel", "value": "value", "mean": "mean +/- std of the channel"}


def batch_norm_facts(N=8, C=4, H=4, W=4, seed=0):
    """A batch whose channels have different means and spreads, through the textbook batch norm:
    ``{"x", "y", "mean", "var", "count"}`` (mean and var as the layer computed them)."""
    rng = np.random.default_rng(seed)
    centre, spread = np.linspace(-3, 5, C), np.linspace(0.5, 2.5, C)[::-1]
    x = centre.reshape(1, C, 1, 1) + spread.reshape(1, C, 1, 1) * rng.standard_normal((N, C, H, W))
    y, _, (mean, var, count) = batchnorm_forward(x, np.ones(C), np.zeros(C), 1e-5)
    return dict(x=x, y=y, mean=mean, var=var, count=count, N=N, C=C, H=H, W=W)


def draw_batch_norm(path=None, labels=None):
    """Every value of each channel before and after batch norm, with the channel's mean and std."""
    t = texts(BATCH_NORM_LABELS, labels)
    f = batch_norm_facts()
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 4.4), sharey=False)
    rng = np.random.default_rng(1)
    for ax, key in zip(axes, ("before", "after")):
        a = f["x" if key == "before" else "y"]
        for c in range(f["C"]):
            values = a[:, c].ravel()
            ax.scatter(c + rng.uniform(-0.25, 0.25, values.size), values, s=5, alpha=0.5)
            # before: the layer's own statistics (biased variance); after: measured on y
            mean, std = (f["mean"][c], np.sqrt(f["var"][c])) if key == "before" else (values.mean(), values.std())
            ax.errorbar(c + 0.38, mean, yerr=std, fmt="o", color="black", ms=4, capsize=3,
                        label=t["mean"] if c == 0 else None)
        ax.set(title=t[key], xlabel=t["channel"], ylabel=t["value"], xticks=range(f["C"]))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(t["title"].format(**f), fontsize=10.5, weight="bold")
    fig.tight_layout()
    return finish(fig, path)


ROUTING_LABELS = {"title": "Where the gradient goes: ReLU lets it through where x > 0; max-pool sends each window's "
                           "to its largest value",
                  "x": "x", "relu_y": "ReLU(x)", "relu_dx": "dx for dy = 1 everywhere",
                  "pool_x": "x, the {k}x{k} windows (stride {s})", "pool_y": "max-pool(x)",
                  "pool_dy": "dy (given)", "pool_dx": "dx: each dy to its window's winner"}


def routing_facts(size=4, k=2, seed=3):
    """ReLU and a k x k / k max-pool on one seeded ``size`` x ``size`` image, forward and backward
    by minires/nn/activation.py:relu_backward and minires/nn/pool.py:maxpool_backward."""
    x = np.round(np.random.default_rng(seed).normal(size=(1, 1, size, size)), 1)
    y, mask = relu_forward(x)
    relu_dx = relu_backward(np.ones_like(x), mask)
    py, cache = maxpool_forward(x, (k, k), (k, k), (0, 0))
    dy = np.arange(1, py.size + 1, dtype=x.dtype).reshape(py.shape)
    pool_dx = maxpool_backward(dy, cache)
    return dict(x=x[0, 0], relu_y=y[0, 0], relu_dx=relu_dx[0, 0], pool_y=py[0, 0], pool_dy=dy[0, 0],
                pool_dx=pool_dx[0, 0], k=k)


def draw_relu_maxpool(path=None, labels=None):
    """Top: x, ReLU(x) and its gradient. Bottom: x in windows, max-pool(x), the given dy and the routed dx."""
    t = texts(ROUTING_LABELS, labels)
    f = routing_facts()
    fig, axes = pyplot().subplots(2, 4, figsize=(11, 6))
    number_grid(axes[0, 0], f["x"], t["x"], cmap="RdBu_r", fmt="{:.1f}", vmin=-2.5, vmax=2.5)
    number_grid(axes[0, 1], f["relu_y"], t["relu_y"], cmap="Greens", fmt="{:.1f}")
    number_grid(axes[0, 2], f["relu_dx"], t["relu_dx"], cmap="Purples", vmin=0, vmax=1.5)
    axes[0, 3].axis("off")
    number_grid(axes[1, 0], f["x"], t["pool_x"].format(k=f["k"], s=f["k"]), cmap="RdBu_r", fmt="{:.1f}",
                vmin=-2.5, vmax=2.5)
    k, n = f["k"], f["x"].shape[0] // f["k"]
    for i in range(n):
        for j in range(n):
            axes[1, 0].add_patch(mpl_patches().Rectangle((j * k - 0.5, i * k - 0.5), k, k, fill=False, lw=2))
    number_grid(axes[1, 1], f["pool_y"], t["pool_y"], cmap="Greens", fmt="{:.1f}")
    number_grid(axes[1, 2], f["pool_dy"], t["pool_dy"], cmap="Oranges")
    number_grid(axes[1, 3], f["pool_dx"], t["pool_dx"], cmap="Oranges")
    fig.suptitle(t["title"], fontsize=10.5, weight="bold")
    fig.tight_layout()
    return finish(fig, path)


LAYOUT_LABELS = {"title": "One tensor, two orders in memory: N={N}, C={C}, H={H}, W={W}",
                 "logical": "the tensor: {C} channels of {H}x{W} (cell: c,h,w)",
                 "first": "NCHW, data_format='{first}' (PyTorch, minires): strides along (N, C, H, W) {strides}",
                 "last": "NHWC, data_format='{last}' (Keras): strides along (N, C, H, W) {strides}",
                 "memory": "memory, address 0 ->",
                 "note": "Strides count elements: the step in memory for +1 along each axis. minires runs NCHW "
                         "inside; a channels_last model transposes at its two ends (a view, no copy)."}


def layout_facts(N=1, C=3, H=2, W=3):
    """The order in memory of an (N, C, H, W) tensor stored NCHW and stored NHWC: for each address,
    (c, h, w) of the element there; and each layout's strides in elements along (N, C, H, W)."""
    index = np.stack(np.meshgrid(np.arange(C), np.arange(H), np.arange(W), indexing="ij"), -1)   # (C, H, W, 3)
    nchw = np.ascontiguousarray(np.broadcast_to(index, (N, C, H, W, 3)))
    nhwc = np.ascontiguousarray(nchw.transpose(0, 2, 3, 1, 4))
    x = np.zeros((N, C, H, W), np.float32)
    strides = {"first": tuple(s // x.itemsize for s in x.strides),
               "last": tuple(s // x.itemsize for s in                  # an NHWC array seen as (N, C, H, W)
                             np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2).strides)}
    return dict(N=N, C=C, H=H, W=W, first=[tuple(e) for e in nchw.reshape(-1, 3)],
                last=[tuple(e) for e in nhwc.reshape(-1, 3)], strides=strides, formats=DATA_FORMATS)


def draw_layouts(path=None, labels=None):
    """The tensor's channels as small grids, then the two memory orders as strips coloured by channel."""
    t = texts(LAYOUT_LABELS, labels)
    f = layout_facts()
    colors = pyplot().get_cmap("Set2")
    cell = 0.5
    n = len(f["first"])
    width, height = 0.4 + cell * n + 0.4, 5.2
    fig, ax = canvas(width, height)
    first, last = f["formats"]
    ax.text(0.15, height - 0.35, t["title"].format(**f), fontsize=10.5, weight="bold")
    ax.text(0.4, height - 0.8, t["logical"].format(**f), fontsize=9)
    for c in range(f["C"]):
        for h in range(f["H"]):
            for w in range(f["W"]):
                x, y = 0.4 + c * (f["W"] + 1) * cell + w * cell, height - 1.3 - h * cell
                _cell(ax, x, y, cell, colors(c), f"{c},{h},{w}")
    for k, (key, order) in enumerate((("first", f["first"]), ("last", f["last"]))):
        y = height - 2.9 - 1.05 * k
        ax.text(0.4, y + 0.5, t[key].format(first=first, last=last, strides=f["strides"][key]), fontsize=9)
        for a, (c, h, w) in enumerate(order):
            _cell(ax, 0.4 + a * cell, y, cell, colors(c), f"{c},{h},{w}")
    ax.text(0.4, 0.75, t["memory"], fontsize=8, color="#4a5568")
    ax.text(0.15, 0.3, t["note"], fontsize=8, color="#4a5568")
    return finish(fig, path)


def _cell(ax, x, y, size, color, text):
    """One element: a coloured square with its (c, h, w) written in."""
    ax.add_patch(mpl_patches().Rectangle((x, y - size / 2), size, size, facecolor=color, edgecolor="#2d3748", lw=0.7))
    ax.text(x + size / 2, y, text, ha="center", va="center", fontsize=7)
