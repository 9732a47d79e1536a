"""Figures of training: schedules, data parallelism, and the paper's degradation experiment, run here.

    draw_lr_schedules   the schedules of minires/train/optim.py:make_schedule, evaluated step by step
    draw_all_reduce     W simulated ranks, each its DistributedSampler shard, one all-reduce of the gradients
    draw_degradation    a tiny run of minires/teach/experiments.py:degradation (or a result you pass)
"""
import copy

import numpy as np

from .. import nn
from ..parallel.blas import blas_threads
from ..parallel.mpi import average_gradients, get_world, simulate
from ..parallel.sampler import DistributedSampler
from ..train.optim import SGD, make_schedule
from ..viz import pyplot
from .diagrams_common import arrow, box, canvas, finish, texts
from .experiments import degradation, smooth

SCHEDULE_LABELS = {"title": "Learning-rate schedules over {total:,} steps, base lr {lr} (make_schedule)",
                   "step": "step: /10 at {milestones}", "cosine": "cosine to 0",
                   "warmup": "cosine after a linear warm-up of {warmup:,} steps", "constant": "constant",
                   "xlabel": "step", "ylabel": "learning rate", "log": "the same, log scale"}


def schedule_facts(total=64000, lr=0.1, warmup=3200, points=801):
    """{name: (steps, lr at each step)} for make_schedule's 'step', 'cosine', 'cosine' with a warm-up
    and 'constant', each on a fresh SGD (a schedule sets its optimizer's lr when made); and the
    step schedule's milestones."""
    steps = np.unique(np.linspace(0, total, points).astype(int))
    found = {}
    for key, name, kw in (("step", "step", {}), ("cosine", "cosine", {}),
                          ("warmup", "cosine", {"warmup_steps": warmup}), ("constant", "constant", {})):
        opt = SGD([nn.Parameter(np.zeros(1, np.float32))], lr=lr)
        sched = make_schedule(name, opt, total, **kw)
        found[key] = (steps, np.array([sched.lr_at(int(t)) for t in steps]))
        if key == "step":
            found["milestones"] = list(sched.milestones)
    return found


def draw_lr_schedules(path=None, labels=None, total=64000, lr=0.1, warmup=3200):
    """Each schedule's lr against the step, linear and log scale."""
    t = texts(SCHEDULE_LABELS, labels)
    f = schedule_facts(total, lr, warmup)
    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4.2))
    for ax in axes:
        for key, style in (("step", "-"), ("cosine", "-"), ("warmup", "--"), ("constant", ":")):
            steps, values = f[key]
            ax.plot(steps, values, style, lw=1.6, label=t[key].format(milestones=f["milestones"], warmup=warmup))
        ax.set(xlabel=t["xlabel"], ylabel=t["ylabel"])
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    axes[1].set_ylim(lr * 1e-4, lr * 2)
    axes[1].set_title(t["log"], fontsize=9)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(t["title"].format(total=total, lr=lr), fontsize=10.5, weight="bold")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return finish(fig, path)


ALL_REDUCE_LABELS = {"title": "Data parallelism on {W} ranks: each its shard, one all-reduce, the same step everywhere",
                     "rank": "rank {r}: items {items}\nits gradient |g_{r}| = {norm:.4f}",
                     "reduce": "all-reduce: sum over the {W} ranks, then / {W}\n(average_gradients: one message)",
                     "after": "rank {r}: |g| = {norm:.4f}",
                     "note": "One process on all {n} items: |g| = {single:.4f}; the averaged gradient differs from it "
                             "by at most {diff:.1e}.\nThe model: a linear classifier (4 features, 3 classes) and "
                             "cross-entropy, float64; "
                             "the shards are DistributedSampler's (seed {seed}, epoch 0)."}


def all_reduce_facts(world_size=4, n=16, seed=0):
    """A linear classifier's gradient on ``n`` items: per rank on its DistributedSampler shard, averaged
    by average_gradients over ``world_size`` simulated ranks, and by one process on all items."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, 4)), rng.integers(0, 3, n)
    nn.manual_seed(seed)
    base = nn.Linear(4, 3).to(dtype=np.float64)

    def gradient(model, items):
        loss = nn.CrossEntropyLoss()
        model.zero_grad()
        loss(model(x[items]), y[items])
        model.backward(loss.backward())
        return np.concatenate([p.grad.ravel() for p in model.parameters()])

    def rank_step(models):
        world = get_world()                                            # this thread's simulated rank
        model = models[world.rank]
        items = list(DistributedSampler(n, seed=seed))                 # its shard of epoch 0
        own = gradient(model, items)
        average_gradients(model)                                       # the all-reduce
        return items, own, np.concatenate([p.grad.ravel() for p in model.parameters()])

    results = simulate(world_size, rank_step, [copy.deepcopy(base) for _ in range(world_size)])
    single = gradient(copy.deepcopy(base), list(range(n)))
    return dict(W=world_size, n=n, seed=seed, shards=[r[0] for r in results], own=[r[1] for r in results],
                averaged=[r[2] for r in results], single=single)


def draw_all_reduce(path=None, labels=None, world_size=4, n=16):
    """Ranks on top (shard, own gradient), the all-reduce in the middle, ranks below (the same gradient)."""
    t = texts(ALL_REDUCE_LABELS, labels)
    f = all_reduce_facts(world_size, n)
    W = f["W"]
    col = 2.7
    width, height = 0.6 + col * W, 5.2
    fig, ax = canvas(width, height)
    ax.text(0.15, height - 0.35, t["title"].format(W=W), fontsize=10.5, weight="bold")
    mid = (width / 2, 2.65)
    box(ax, *mid, min(width - 1, 4.6), 0.55, t["reduce"].format(W=W), "#fefcbf", fontsize=8.5)
    for r in range(W):
        x = 0.3 + col * (r + 0.5)
        box(ax, x, 3.95, col - 0.25, 0.7, t["rank"].format(r=r, items=f["shards"][r], norm=np.linalg.norm(f["own"][r])),
            "#bee3f8", fontsize=7.5)
        box(ax, x, 1.35, col - 0.25, 0.45, t["after"].format(r=r, norm=np.linalg.norm(f["averaged"][r])),
            "#c6f6d5", fontsize=8)
        arrow(ax, (x, 3.6), (mid[0] + (x - mid[0]) * 0.4, mid[1] + 0.28))
        arrow(ax, (mid[0] + (x - mid[0]) * 0.4, mid[1] - 0.28), (x, 1.58))
    diff = max(float(np.abs(a - f["single"]).max()) for a in f["averaged"])
    ax.text(0.15, 0.45, t["note"].format(n=f["n"], single=np.linalg.norm(f["single"]), diff=diff, seed=f["seed"]),
            fontsize=8, color="#4a5568")
    return finish(fig, path)


DEGRADATION_LABELS = {"title": "Degradation on {data}: {steps} steps, batch {batch}; training error of plain and "
                               "residual nets",
                      "plain": "plain networks", "resnet": "residual networks", "plain_net": "plain-{depth}",
                      "resnet_net": "ResNet-{depth}",
                      "xlabel": "iteration", "ylabel": "training error (%), running mean of the mini-batches"}


def degradation_result(depths=(8, 20), steps=60, batch_size=32, seed=0):
    """A tiny degradation run on the digits (a few seconds): minires/teach/experiments.py:degradation.

    OpenBLAS on one thread: the matrices are small, and on a busy machine its threads made the
    run ten times slower (measured on 2 cores).
    """
    with blas_threads(1):
        return degradation("digits", depths=depths, steps=steps, batch_size=batch_size, seed=seed, log=None,
                           plot=False)


def draw_degradation(path=None, labels=None, result=None):
    """Training error against iteration, plain nets left and residual nets right, from ``result``
    (a degradation() result; default: ``degradation_result()``, a few seconds on the digits)."""
    t = texts(DEGRADATION_LABELS, labels)
    result = degradation_result() if result is None else result
    cfg = result["config"]
    window = max(1, min(cfg["steps_per_epoch"], cfg["steps"] // 6))
    depths = sorted({r["depth"] for r in result["runs"]})
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 4), sharey=True)
    for r in result["runs"]:
        ax = axes[0 if r["kind"] == "plain" else 1]
        lw = 1.2 + 1.3 * depths.index(r["depth"]) / max(1, len(depths) - 1)   # thicker: deeper, as in the paper
        errors = 100 * smooth(r["record"]["batch_error"], window)
        ax.plot(np.arange(1, len(errors) + 1), errors, lw=lw, label=t[r["kind"] + "_net"].format(depth=r["depth"]))
    for ax, kind in zip(axes, ("plain", "resnet")):
        ax.set(title=t[kind], xlabel=t["xlabel"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel(t["ylabel"], fontsize=8.5)
    fig.suptitle(t["title"].format(data=cfg["data"], steps=cfg["steps"], batch=cfg["batch_size"]), fontsize=10.5,
                 weight="bold")
    fig.tight_layout()
    return finish(fig, path)
