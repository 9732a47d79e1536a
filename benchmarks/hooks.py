"""Hooks cost nothing when unused (issue 29): the Python calls of one ResNet-20 step, counted.

    python benchmarks/hooks.py              # a model that never had a hook
    python benchmarks/hooks.py --touched    # every module given a forward and a backward hook, then removed

One forward and backward of ResNet-20 on a (8, 3, 32, 32) batch, in eval mode; the calls are
counted with ``sys.setprofile``, which is exact where a timing on a shared machine is not. Run it
on a checkout before hooks (PYTHONPATH=that checkout) and after: the same count means the same
code runs. The median of 30 steps' wall time is printed too, for a quiet machine.
"""
import argparse
import sys
import time

import numpy as np

import minires
from minires import models


def step(model, x):
    model(x)
    model.backward(np.ones((len(x), 10), np.float32))


def count_calls(model, x):
    """Python function calls made by one step."""
    calls = [0]

    def profile(frame, event, arg):
        if event == "call":
            calls[0] += 1

    sys.setprofile(profile)
    try:
        step(model, x)
    finally:
        sys.setprofile(None)
    return calls[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--touched", action="store_true", help="register and remove a hook on every module first")
    args = parser.parse_args()
    model = models.resnet20(num_classes=10).eval()
    x = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    step(model, x)
    if args.touched:
        for module in model.modules():
            module.register_forward_hook(lambda *a: None).remove()
            module.register_full_backward_hook(lambda *a: None).remove()
    calls = count_calls(model, x)
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        step(model, x)
        times.append(time.perf_counter() - t0)
    print(f"{minires.__file__}: {'hooks registered and removed' if args.touched else 'never hooked'}: "
          f"{calls} Python calls per step, median {1000 * np.median(times):.1f} ms")


if __name__ == "__main__":
    main()
