"""Experiments from the paper, small enough for a laptop: ``minires experiment degradation``.

The degradation problem (He et al., 2015, Figure 1 and Figure 6): a deeper *plain* network
(conv-BN-ReLU stacked, no shortcuts) ends up with a higher **training** error than a
shallower one trained the same way. It is not over-fitting (that would lower the training
error), and batch norm keeps the signals from vanishing: the deeper plain net is harder to
*optimise* (notebook 9 measures its gradients growing a thousand-fold toward the input at
initialisation). Its residual twin, the same layers plus identity shortcuts, does not
degrade: deeper is as good or better.

    from minires.teach.experiments import degradation
    result = degradation(depths=(20, 56), steps=600, out="runs/degradation")
    print(result["summary"])

Every net sees the same batches in the same order, starts from the same seed and uses the
same optimiser settings; only the depth and the shortcuts differ.
"""
import csv
import io
import json
import math
import os
import time

import numpy as np

from .. import nn
from ..backend import check_device, to_numpy
from ..data import ArrayDataset, DataLoader, load_dataset
from ..models import CifarResNet
from ..train.optim import SGD, make_schedule
from ..viz import finish_figure, pyplot
from ..weights import atomic_write

KINDS = ("plain", "resnet")
TRAIN_EVAL_MAX = 10_000  # the training error is measured on at most this many training images
SAME_WITHIN = 0.01  # training errors closer than one percentage point are "about the same"
CSV_COLUMNS = ["model", "depth", "residual", "step", "lr", "loss", "batch_error", "train_error_eval", "test_error"]


def check_degradation_options(depths, steps, batch_size, lr, momentum, weight_decay, eval_every):
    """Raise a ValueError that says what was expected for the first bad option."""
    depths = tuple(depths)
    if len(depths) < 2:
        raise ValueError(f"degradation: give at least two depths to compare, got {list(depths)}")
    for d in depths:
        if not isinstance(d, (int, np.integer)) or d < 8 or (d - 2) % 6:
            raise ValueError(f"degradation: each depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110 ...), "
                             f"got {d!r}")
    if len(set(depths)) != len(depths):
        raise ValueError(f"degradation: the depths must differ, got {list(depths)}")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"degradation: {name.replace('_', ' ')} must be a positive integer, got {value!r}")
    if eval_every is not None and (not isinstance(eval_every, (int, np.integer)) or eval_every < 1):
        raise ValueError(f"degradation: eval_every must be a positive integer or None, got {eval_every!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"degradation: the learning rate must be a positive number, got {lr!r}")
    for name, value in (("momentum", momentum), ("weight_decay", weight_decay)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"degradation: {name.replace('_', ' ')} must be a number >= 0, got {value!r}")
    return tuple(sorted(int(d) for d in depths))


def error_rate(model, dataset, device="cpu", batch_size=500):
    """Fraction of ``dataset`` misclassified by ``model`` in eval mode (running BN statistics)."""
    was_training = model.training
    model.eval()
    wrong = 0
    with nn.no_grad():
        for x, y in DataLoader(dataset, batch_size, shuffle=False, device=device):
            wrong += int((to_numpy(model(x).argmax(axis=1)) != to_numpy(y)).sum())
    model.train(was_training)
    return wrong / len(dataset)


def train_steps(model, train_set, test_set, steps, batch_size=64, lr=0.1, momentum=0.9, weight_decay=0.0,
                schedule="constant", eval_every=None, seed=0, device="cpu", log=None, train_eval=None):
    """Train ``model`` for exactly ``steps`` SGD steps on shuffled mini-batches; the record.

    Epoch e shuffles with ``default_rng([seed, e])``, so every model sees the same batches.
    Returns a dict of per-step lists ``lr``, ``loss``, ``batch_error`` (the mini-batch's error,
    in training mode) and ``evals``: [(step, training-set error, test-set error)] measured in
    eval mode every ``eval_every`` steps and at the end (the training error on ``train_eval``,
    default the whole ``train_set``).
    """
    train_eval = train_set if train_eval is None else train_eval
    criterion = nn.CrossEntropyLoss()
    optimizer = SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = make_schedule(schedule, optimizer, steps)
    loader = DataLoader(train_set, batch_size, drop_last=True, device=device)
    per_epoch = len(loader)
    if per_epoch == 0:
        raise ValueError(f"batch size {batch_size} is larger than the training set ({len(train_set)} images)")
    record = {"lr": [], "loss": [], "batch_error": [], "evals": []}
    model.train()
    order = None
    for step in range(steps):
        epoch, b = divmod(step, per_epoch)
        if b == 0:
            order = np.random.default_rng([seed, epoch]).permutation(len(train_set))
        x, y = loader.make_batch(order[b * batch_size:(b + 1) * batch_size])
        record["lr"].append(optimizer.lr)
        logits = model(x)
        loss = float(criterion(logits, y))
        if not math.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss} at step {step + 1}; try a smaller learning rate "
                                     f"(now {lr})")
        model.zero_grad()
        model.backward(criterion.backward())
        optimizer.step()
        sched.step()
        record["loss"].append(loss)
        record["batch_error"].append(float(np.mean(to_numpy(logits.argmax(axis=1)) != to_numpy(y))))
        if (eval_every and (step + 1) % eval_every == 0) or step + 1 == steps:
            evals = (step + 1, error_rate(model, train_eval, device), error_rate(model, test_set, device))
            record["evals"].append(evals)
            if log:
                log(f"  step {evals[0]:>5}/{steps}  loss {np.mean(record['loss'][-per_epoch:]):.4f}  "
                    f"(eval mode) train error {evals[1]:.2%}  test error {evals[2]:.2%}")
    return record


def smooth(values, window):
    """Running mean over the last ``window`` values (fewer at the start): a curve per iteration."""
    v = np.asarray(values, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(v)])
    i = np.arange(1, len(v) + 1)
    lo = np.maximum(0, i - window)
    return (c[i] - c[lo]) / (i - lo)


def degradation(data="digits", depths=(20, 56), steps=600, batch_size=64, lr=0.1, momentum=0.9, weight_decay=0.0,
                schedule="constant", eval_every=None, seed=0, device="cpu", root=None, download=True, out=None,
                plot=True, log=print):
    """Train a plain and a residual CIFAR-style net at each depth the same way; compare training errors.

    ``depths``: 6n+2 layers each (the paper's 20, 32, 44, 56, 110). Each of the 2 x len(depths)
    nets is trained for ``steps`` SGD steps with the same seed, batches and settings (no data
    augmentation: the question is how well a net fits its training set). The training error is
    measured on the whole training set, or on a fixed sample of ``TRAIN_EVAL_MAX`` images of a
    larger one (CIFAR-10's 50,000). ``out``: a folder for
    degradation.png, degradation.csv (one row per step and net) and degradation.json (settings
    and final numbers). Returns a dict: ``config``, ``runs`` (one per net, with its record and
    final numbers), ``verdict`` and ``summary`` (a printable table).
    """
    depths = check_degradation_options(depths, steps, batch_size, lr, momentum, weight_decay, eval_every)
    check_device(device)
    if schedule not in ("constant", "step", "cosine"):
        raise ValueError(f"degradation: schedule must be 'constant', 'step' or 'cosine', got {schedule!r}")
    log = log or (lambda s: None)
    train_set, test_set = load_dataset(data, root=root, download=download)
    train_eval = train_set
    if len(train_set) > TRAIN_EVAL_MAX:  # CIFAR-10: measure the training error on a fixed sample
        pick = np.sort(np.random.default_rng(seed).choice(len(train_set), TRAIN_EVAL_MAX, replace=False))
        train_eval = ArrayDataset(train_set.images[pick], train_set.labels[pick], train_set.classes,
                                  train_set.mean, train_set.std)
    config = dict(data=str(data), depths=list(depths), steps=steps, batch_size=batch_size, lr=lr, momentum=momentum,
                  weight_decay=weight_decay, schedule=schedule, eval_every=eval_every, seed=seed, device=device,
                  train_images=len(train_set), train_error_images=len(train_eval),
                  steps_per_epoch=len(train_set) // batch_size)
    if out is not None:
        os.makedirs(out, exist_ok=True)
    C = train_set.image_shape[0]
    runs = []
    for kind in KINDS:
        for depth in depths:
            nn.manual_seed(seed)  # the same initialisation scheme and seed for every net
            model = CifarResNet((depth - 2) // 6, train_set.num_classes, residual=kind == "resnet", in_channels=C)
            model.to(device)
            name = f"{kind}{depth}"
            log(f"{name}: {depth} layers, {model.num_parameters():,} parameters, {steps} steps")
            start = time.perf_counter()
            record = train_steps(model, train_set, test_set, steps, batch_size, lr, momentum, weight_decay, schedule,
                                 eval_every, seed, device, log, train_eval)
            runs.append(_finish_run(name, kind, depth, model, record, time.perf_counter() - start,
                                    config["steps_per_epoch"]))
            log(f"{name}: done in {runs[-1]['seconds']:.1f} s")
    result = {"experiment": "degradation", "config": config, "runs": runs, "verdict": verdict(runs)}
    result["summary"] = format_summary(result)
    if out is not None:
        write_results(result, out, plot=plot)
    return result


def _finish_run(name, kind, depth, model, record, seconds, steps_per_epoch):
    """The final numbers of one net. ``train_error`` is the mean error of the last epoch's
    mini-batches, in training mode, as the curves show it (steadier than one evaluation: a
    badly trained plain net's running BN statistics can swing its eval-mode error by tens of
    points from one evaluation to the next); ``train_error_eval`` the error on the training set
    in evaluation mode after the last step."""
    window = max(1, min(steps_per_epoch, len(record["loss"])))  # the last epoch's mini-batches
    step, train_error_eval, test_error = record["evals"][-1]
    return dict(model=name, kind=kind, depth=depth, residual=kind == "resnet", parameters=model.num_parameters(),
                train_error=float(np.mean(record["batch_error"][-window:])),
                train_loss=float(np.mean(record["loss"][-window:])),
                train_error_eval=train_error_eval, test_error=test_error, seconds=seconds, record=record)


def verdict(runs, tolerance=SAME_WITHIN):
    """For each kind: is the deepest net's final training error 'higher', 'lower' or 'about the same'
    (within ``tolerance``, a fraction) as the shallowest's? Degradation is 'higher'."""
    out = {}
    for kind in KINDS:
        mine = sorted((r for r in runs if r["kind"] == kind), key=lambda r: r["depth"])
        shallow, deep = mine[0], mine[-1]
        diff = deep["train_error"] - shallow["train_error"]
        comparison = "higher" if diff > tolerance else "lower" if diff < -tolerance else "about the same"
        out[kind] = dict(shallow=shallow["model"], deep=deep["model"], shallow_train_error=shallow["train_error"],
                         deep_train_error=deep["train_error"], comparison=comparison,
                         deeper_is_worse=comparison == "higher")
    return out


def format_summary(result):
    """The final numbers as a table, and one sentence per kind of net."""
    cfg = result["config"]
    lines = [f"degradation on {cfg['data']}: {cfg['steps']} steps of batch {cfg['batch_size']}, lr {cfg['lr']} "
             f"({cfg['schedule']}), momentum {cfg['momentum']}, weight decay {cfg['weight_decay']}",
             f"{'':20} {'training set, last epoch':>26}   {'after the last step':>27}",
             f"{'net':10} {'params':>9} {'error':>12} {'loss':>13}   {'train error':>13} {'test error':>13} "
             f"{'seconds':>8}"]
    for r in result["runs"]:
        lines.append(f"{r['model']:10} {r['parameters']:>9,} {r['train_error']:>12.2%} {r['train_loss']:>13.4f}   "
                     f"{r['train_error_eval']:>13.2%} {r['test_error']:>13.2%} {r['seconds']:>8.1f}")
    n, m = cfg["train_images"], cfg["train_error_images"]
    measured = f"all {n:,} training images" if m == n else f"a fixed sample of {m:,} of the {n:,} training images"
    lines.append("(last epoch: the mean over its mini-batches, in training mode, as the curves; after the last "
                 f"step: in evaluation mode, on {measured} and on the test set)")
    for kind, v in result["verdict"].items():
        label = "plain" if kind == "plain" else "residual"
        worse = v["deeper_is_worse"]
        lines.append(f"{label}: {v['deep']} ends with a training error of {v['deep_train_error']:.2%}, "
                     f"{v['comparison'].upper() if worse else v['comparison']} "
                     f"{'as' if v['comparison'] == 'about the same' else 'than'} {v['shallow']}'s "
                     f"{v['shallow_train_error']:.2%} -> {'degradation' if worse else 'no degradation'}")
    lines.append(f"('about the same': within {SAME_WITHIN * 100:g} percentage point of each other)")
    return "\n".join(lines)


def write_results(result, out, plot=True):
    """degradation.csv (per step), degradation.json (settings, final numbers) and degradation.png, atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in result["runs"]:
        rec = r["record"]
        evals = {s: (tr, te) for s, tr, te in rec["evals"]}
        for i, (lr, loss, err) in enumerate(zip(rec["lr"], rec["loss"], rec["batch_error"]), 1):
            tr, te = evals.get(i, ("", ""))
            writer.writerow([r["model"], r["depth"], int(r["residual"]), i, f"{lr:.6g}", f"{loss:.6g}", f"{err:.6g}",
                             tr if tr == "" else f"{tr:.6g}", te if te == "" else f"{te:.6g}"])
    with atomic_write(os.path.join(out, "degradation.csv")) as f:
        f.write(buf.getvalue().encode("utf-8"))
    saved = {k: v for k, v in result.items() if k != "runs"}
    saved["runs"] = [dict({k: v for k, v in r.items() if k != "record"}, evals=r["record"]["evals"])
                     for r in result["runs"]]
    with atomic_write(os.path.join(out, "degradation.json")) as f:
        f.write((json.dumps(saved, indent=2) + "\n").encode("utf-8"))
    if plot:
        try:
            plot_degradation(result, os.path.join(out, "degradation.png"))
        except ImportError:
            print("note: matplotlib is not installed, so no degradation.png (pip install matplotlib)")


def plot_degradation(result, path=None):
    """The paper's Figure 6, small: training error (running mean over an epoch's mini-batches,
    solid) and test error (dashed, where measured) against iterations, plain nets left, residual
    nets middle; the training loss of all nets right (log scale). Returns the Figure."""
    plt = pyplot()
    cfg = result["config"]
    window = max(1, cfg["steps_per_epoch"])
    depths = sorted({r["depth"] for r in result["runs"]})
    colors = {d: plt.get_cmap("viridis")(0.85 * i / max(1, len(depths) - 1)) for i, d in enumerate(depths)}
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for r in result["runs"]:
        rec = r["record"]
        steps = np.arange(1, len(rec["loss"]) + 1)
        ax = axes[0 if r["kind"] == "plain" else 1]
        label = f"{'plain' if r['kind'] == 'plain' else 'ResNet'}-{r['depth']}"
        lw = 1.2 + 1.3 * depths.index(r["depth"]) / max(1, len(depths) - 1)  # thicker = deeper, as in the paper
        ax.plot(steps, 100 * smooth(rec["batch_error"], window), color=colors[r["depth"]], lw=lw,
                label=f"{label} train")
        ev = np.array(rec["evals"], dtype=np.float64)
        ax.plot(ev[:, 0], 100 * ev[:, 2], "--o", color=colors[r["depth"]], lw=0.9, ms=3, label=f"{label} test")
        axes[2].plot(steps, smooth(rec["loss"], window), color=colors[r["depth"]], lw=lw,
                     ls="-" if r["residual"] else ":", label=label)
    for ax, title in zip(axes[:2], ["plain networks", "residual networks"]):
        ax.set(xlabel="iteration", ylabel="error (%)", title=title, ylim=(0, None))
    top = max(ax.get_ylim()[1] for ax in axes[:2])
    for ax in axes[:2]:
        ax.set_ylim(0, top)
    axes[2].set(xlabel="iteration", ylabel="training loss", yscale="log", title="training loss (dotted: plain)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"degradation on {cfg['data']}: {cfg['steps']} steps, batch {cfg['batch_size']}, lr {cfg['lr']} "
                 f"({cfg['schedule']}), momentum {cfg['momentum']}, weight decay {cfg['weight_decay']}")
    fig.tight_layout()
    return finish_figure(fig, path)
