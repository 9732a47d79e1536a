"""Pictures with matplotlib (headless): training curves, confusion matrices, misclassified images,
first-layer filters and gradient norms per layer. Each function returns the Figure and,
given a ``path``, writes a PNG atomically. matplotlib is an extra: `pip install matplotlib`
(from a minires checkout: `pip install ".[plots]"`).
"""
import io

import numpy as np

from .backend import to_numpy
from .weights import atomic_write


def pyplot():
    """matplotlib.pyplot, switched to the Agg backend (no screen needed) unless a notebook's backend
    is in use; an ImportError that says how to install matplotlib where it is missing."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("plots need matplotlib: pip install matplotlib "
                          '(from a minires checkout: pip install ".[plots]")') from e
    backend = matplotlib.get_backend().lower()
    # Keep Agg and the notebook backends (Jupyter's inline one is called 'inline' since
    # matplotlib 3.9, 'module://matplotlib_inline.backend_inline' before); anything else
    # becomes Agg, which needs no screen.
    if backend != "agg" and "inline" not in backend and "ipympl" not in backend and backend not in ("nbagg", "widget"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, dpi=110):
    """Write ``fig`` to ``path`` as PNG through a temporary file (never a half-written picture)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def finish_figure(fig, path):
    """Save ``fig`` to ``path`` and close it (when a path is given); returns ``fig``."""
    if path is not None:
        save_figure(fig, path)
        pyplot().close(fig)
    return fig


def plot_curves(history, path=None, title=None, test=None):
    """Loss and accuracy per epoch, training and validation: ``history`` as returned by
    minires.train.fit. ``test``: the test set's numbers, measured once for the chosen epoch
    (``history.test``): a star at that epoch, whose dashed line marks the checkpoint kept."""
    plt = pyplot()
    rows = [r for r in history if "epoch" in r]
    epochs = [r["epoch"] for r in rows]
    other = "val" if rows and "val_loss" in rows[0] else "test" if rows and "test_loss" in rows[0] else None
    label = {"val": "validation", "test": "test"}.get(other)          # older runs measured the test set each epoch
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train", ms=3)
    ax2.plot(epochs, [100 * r["train_acc"] for r in rows], "o-", label="train", ms=3)
    if other:
        ax1.plot(epochs, [r[f"{other}_loss"] for r in rows], "s-", label=label, ms=3)
        ax2.plot(epochs, [100 * r[f"{other}_acc"] for r in rows], "s-", label=label, ms=3)
    if test is not None:
        kept = f"epoch {test['epoch']}" + (f", {test['checkpoint']}" if test.get("checkpoint") else "")
        for ax, value in ((ax1, test["test_loss"]), (ax2, 100 * test["test_acc"])):
            ax.axvline(test["epoch"], color="0.5", ls="--", lw=1, label=f"kept: {kept}")
            ax.plot([test["epoch"]], [value], "*", color="C3", ms=12, label="test, measured once")
    ax1.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return finish_figure(fig, path)


def confusion_matrix(labels, preds, num_classes):
    """(K, K) counts: row = true class, column = predicted class."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (to_numpy(labels), to_numpy(preds)), 1)
    return m


def format_confusion(matrix, classes):
    """The confusion matrix as a text table (rows: true class, columns: predicted)."""
    names = [str(c)[:8] for c in classes]
    w = max(5, max(len(n) for n in names), len(str(int(matrix.max()))))
    lines = [" " * (w + 2) + "".join(f"{n:>{w + 1}}" for n in names) + "   <- predicted"]
    for name, row in zip(names, matrix):
        lines.append(f"{name:>{w}}  " + "".join(f"{v:>{w + 1}}" for v in row))
    return "\n".join(lines)


def plot_confusion(matrix, classes, path=None, title="confusion matrix"):
    """A confusion ``matrix`` (K, K) (``confusion_matrix``: row = true class, column = predicted) as a
    picture, each non-zero cell labelled with its count; ``classes``: the K names, in order.

        >>> fig = plot_confusion(confusion_matrix(labels, preds, 10), range(10), "confusion.png")  # doctest: +SKIP
    """
    plt = pyplot()
    K = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * K, 0.8 + 0.45 * K))
    ax.imshow(matrix, cmap="Blues")
    for i in range(K):
        for j in range(K):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xticks(range(K), [str(c) for c in classes], rotation=45, ha="right")
    ax.set_yticks(range(K), [str(c) for c in classes])
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return finish_figure(fig, path)


def plot_misclassified(images, labels, preds, classes, path=None, max_images=16):
    """A grid of misclassified images ``(N, C, H, W)`` titled 'true -> predicted'."""
    plt = pyplot()
    images, labels, preds = to_numpy(images), to_numpy(labels), to_numpy(preds)
    wrong = np.flatnonzero(labels != preds)[:max_images]
    cols = min(8, max(1, len(wrong)))
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        img = images[i].transpose(1, 2, 0)
        img = (img - img.min()) / max(img.max() - img.min(), 1e-12)
        ax.imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray" if img.shape[2] == 1 else None)
        ax.set_title(f"{classes[labels[i]]}->{classes[preds[i]]}", fontsize=8)
    if not len(wrong):
        axes.flat[0].set_title("no mistakes")
    fig.tight_layout()
    return finish_figure(fig, path)


def plot_filters(weight, path=None, max_filters=64):
    """First-layer filters ``(O, C, KH, KW)`` as small pictures (C = 1 or 3)."""
    plt = pyplot()
    w = to_numpy(weight)[:max_filters]
    cols = min(8, len(w))
    rows = int(np.ceil(len(w) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols, rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, f in zip(axes.flat, w):
        f = (f - f.min()) / max(f.max() - f.min(), 1e-12)
        ax.imshow(f[0] if f.shape[0] != 3 else f.transpose(1, 2, 0), cmap="gray" if f.shape[0] != 3 else None)
    fig.tight_layout()
    return finish_figure(fig, path)


def plot_grad_norms(named_norms, path=None, title="gradient norm per layer", log=True):
    """A line per net: ``named_norms`` maps a label to a list of (layer name, norm), input side first."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for label, pairs in named_norms.items():
        ax.plot(range(1, len(pairs) + 1), [n for _, n in pairs], "o-", ms=3, label=label)
    ax.set(xlabel="layer (input side first)", ylabel="||dL/dW||", title=title)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return finish_figure(fig, path)
