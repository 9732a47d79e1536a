"""Where the time of one minires training step goes: a profile by kind of work.

    python benchmarks/profile_step.py                          # ResNet-20, batch 128, 5 steps
    python benchmarks/profile_step.py --model resnet56 --batch 64 --steps 3 --markdown out.md

Every function below is wrapped with a timer (``Profile.wrap``); a timer on a stack gives
each call its *exclusive* time: its own, minus the time of the wrapped calls inside it. So a
convolution's time is split into its matrix multiplies, its im2col and col2im copies, and the
rest of the layer (the other copies, the bias, the bookkeeping). The rows:

- matmul: ``numpy.matmul`` called by a convolution or the linear layer (batch norm's row
  sums are matrix multiplies too: they count as batch norm);
- im2col, col2im: ``im2col_into`` and ``col2im_add`` in ``minires/engine/conv.py``;
- conv (rest), batch norm, ReLU, pooling, shortcut, linear + loss: each layer's forward and
  backward, less the rows above;
- residual add and blocks: the blocks' own lines (``out += shortcut``, ``g_main += g_short``);
- optimizer: ``SGD.zero_grad`` and ``SGD.step``;
- Python and the rest: the step's time that no wrapped function accounts for (the model's
  container modules, the loop).

The timers cost about a microsecond per call (a few thousand calls per step): the total is
printed next to the unwrapped step's time, measured first, so the difference shows.
Threads as in run.py: ``--threads`` sets OMP/OPENBLAS/MKL_NUM_THREADS (before NumPy loads).
"""
import argparse
import os
import statistics
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Profile:
    """Exclusive time per category, from a stack of running timers (one stack per thread:
    with ThreadParallel the replicas' times add up, so the table is in core-milliseconds)."""

    def __init__(self):
        self.totals = {}
        self.local = threading.local()
        self.lock = threading.Lock()

    def wrap(self, fn, category):
        """``fn`` timed under ``category``; ``category`` may be a function of the calling
        category (the top of the stack), which returns None to leave the time to the caller."""
        profile = self

        def timed(*args, **kwargs):
            stack = profile.local.__dict__.setdefault("stack", [])   # [category, child time] per running call
            cat = category(stack[-1][0] if stack else None) if callable(category) else category
            if cat is None:
                return fn(*args, **kwargs)
            frame = [cat, 0.0]
            stack.append(frame)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - t0
                stack.pop()
                with profile.lock:
                    profile.totals[cat] = profile.totals.get(cat, 0.0) + elapsed - frame[1]
                if stack:
                    stack[-1][1] += elapsed
        timed.__wrapped__ = fn
        return timed


ROWS = ["matmul", "im2col", "col2im", "conv (rest)", "batch norm", "waiting for the other replicas", "ReLU",
        "pooling", "shortcut", "residual add and blocks", "linear + loss", "optimizer"]


def instrument(profile):
    """Wrap minires's layers, copies and matrix multiplies (see the module docstring)."""
    import numpy as np
    from minires import nn
    from minires.engine import conv as conv_module
    from minires.models import blocks
    from minires.train import optim
    from minires.parallel import threads

    def patch(owner, name, category):
        setattr(owner, name, profile.wrap(getattr(owner, name), category))

    layers = {nn.Conv2d: "conv (rest)", nn.BatchNorm2d: "batch norm", nn.ReLU: "ReLU",
              nn.MaxPool2d: "pooling", nn.AdaptiveAvgPool2d: "pooling", blocks.ShortcutA: "shortcut",
              nn.Linear: "linear + loss", nn.Flatten: "linear + loss", nn.CrossEntropyLoss: "linear + loss",
              blocks.BasicBlock: "residual add and blocks", blocks.Bottleneck: "residual add and blocks"}
    for cls, category in layers.items():
        patch(cls, "forward", category)
        patch(cls, "backward", category)
    patch(conv_module, "im2col_into", "im2col")
    patch(conv_module, "col2im_add", "col2im")
    patch(np, "matmul", lambda caller: "matmul" if caller in ("conv (rest)", "linear + loss") else None)
    patch(threads.ReplicaGroup, "gather", "waiting for the other replicas")
    patch(optim.SGD, "zero_grad", "optimizer")
    patch(optim.SGD, "step", "optimizer")


def build_step(model_name, batch, size, classes, alone):
    import numpy as np
    from minires import models, nn, parallel
    from minires.train.optim import SGD
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
    target = rng.integers(0, classes, batch)
    model = getattr(models, model_name)(num_classes=classes)
    net = model if alone else parallel.ThreadParallel(model)
    criterion = nn.CrossEntropyLoss()
    optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step():
        optimizer.zero_grad()
        criterion(net(x), target)
        net.backward(criterion.backward())
        optimizer.step()
    return step


def timed_steps(step, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--alone", action="store_true", help="the model alone, not ThreadParallel(model)")
    p.add_argument("--markdown", help="also write the table to this file")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MINIRES_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, ROOT)

    step = build_step(args.model, args.batch, args.size, args.classes, args.alone)
    step(), step()                                               # warm-up: workspaces, caches
    plain = statistics.median(timed_steps(step, args.steps))     # the step as it runs, no timers
    profile = Profile()
    instrument(profile)
    step()
    profile.totals.clear()
    times = timed_steps(step, args.steps)
    total = sum(times)
    per_step = total / args.steps
    rows = [(name, profile.totals.get(name, 0.0) / args.steps) for name in ROWS]
    replicas = 1 if args.alone else min(args.threads, args.batch)
    # the step's main thread is busy all along; with replicas, each part thread too (time on
    # its own stack), so the wall time counts once per replica
    rows.append(("Python and the rest", per_step * replicas - sum(t for _, t in rows)))
    how = "the model alone" if args.alone else f"ThreadParallel, {replicas} replicas"
    unit = "ms" if replicas == 1 else "core-ms"
    lines = [f"{args.model}, batch {args.batch}, {args.size}x{args.size}, {how}, {args.threads} threads: "
             f"{per_step * 1e3:.0f} ms per step with timers, {plain * 1e3:.0f} ms without "
             f"(mean of {args.steps} steps)", "",
             f"| work | {unit} per step | share |", "|---|---|---|"]
    lines += [f"| {name} | {t * 1e3:.1f} | {100 * t / (per_step * replicas):.0f}% |" for name, t in rows]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
