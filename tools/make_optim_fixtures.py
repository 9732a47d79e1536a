"""Regenerate tests/fixtures/optim/sgd.npz: torch.optim.SGD and three LR schedules (needs torch).

    /work/torchvenv/bin/python tools/make_optim_fixtures.py

SGD. Three float64 parameters p0 (4, 3), p1 (5,), p2 (2, 3, 3, 3). Their initial values come
from np.random.default_rng([SEED, 0]) and the gradients of step k = 1, 2, 3 from
np.random.default_rng([SEED, k]), each a standard normal drawn in the order p0, p1, p2. The
same parameters and gradients are run through three settings of torch.optim.SGD, all with
lr=0.1, weight_decay=5e-4, dampening=0:
    'momentum'  momentum=0.9, nesterov=False
    'nesterov'  momentum=0.9, nesterov=True
    'plain'     momentum=0    (plain SGD with weight decay)
PyTorch's update, for reference (g = grad + weight_decay * p; buffer b starts as g at step 1):
    b = momentum * b + g;   d = g + momentum * b if nesterov else b;   p = p - lr * d

Schedules. An SGD optimizer with lr=0.1 stepped 20 times; lr[t] is the learning rate in use at
step t = 0..19 (read before the t-th scheduler.step()):
    'multistep'  MultiStepLR(milestones=[5, 12], gamma=0.1)
    'cosine'     CosineAnnealingLR(T_max=20)                  (eta_min=0)
    'linear'     LinearLR(start_factor=0.1, total_iters=5)    (end_factor=1.0)

Entries (all float64 unless said):
    'param_names'             ['p0', 'p1', 'p2'] (str)
    'init/<p>'                initial value
    'grad/step<k>/<p>'        gradient given at step k (k = 1, 2, 3)
    '<setting>/step<k>/<p>'   parameter after step k, setting in momentum, nesterov, plain
    'config/<setting>'        [lr, momentum, weight_decay, nesterov (0/1)]
    'lr/<schedule>'           (20,) learning rates, schedule in multistep, cosine, linear
    'lr/base'                 0.1
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from reference import fixture_path  # noqa: E402

SEED = 0
SHAPES = {"p0": (4, 3), "p1": (5,), "p2": (2, 3, 3, 3)}
STEPS = 3
LR, WEIGHT_DECAY = 0.1, 5e-4
SETTINGS = {"momentum": (0.9, False), "nesterov": (0.9, True), "plain": (0.0, False)}
SCHEDULE_STEPS = 20
SCHEDULES = {
    "multistep": lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[5, 12],
                                                                  gamma=0.1),
    "cosine": lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20),
    "linear": lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1,
                                                            total_iters=5),
}


def seeded(step):
    """{name: array}: step 0 gives the initial values, step k >= 1 the gradients of step k."""
    rng = np.random.default_rng([SEED, step])
    return {name: rng.standard_normal(shape) for name, shape in SHAPES.items()}


def main():
    store = {"param_names": np.array(list(SHAPES))}
    init = seeded(0)
    grads = {k: seeded(k) for k in range(1, STEPS + 1)}
    for name in SHAPES:
        store[f"init/{name}"] = init[name]
        for k in range(1, STEPS + 1):
            store[f"grad/step{k}/{name}"] = grads[k][name]

    for setting, (momentum, nesterov) in SETTINGS.items():
        params = {n: torch.tensor(init[n], dtype=torch.float64, requires_grad=True)
                  for n in SHAPES}
        opt = torch.optim.SGD(list(params.values()), lr=LR, momentum=momentum,
                              weight_decay=WEIGHT_DECAY, nesterov=nesterov)
        store[f"config/{setting}"] = np.array([LR, momentum, WEIGHT_DECAY, float(nesterov)])
        for k in range(1, STEPS + 1):
            for n, p in params.items():
                p.grad = torch.from_numpy(grads[k][n].copy())
            opt.step()
            for n, p in params.items():
                store[f"{setting}/step{k}/{n}"] = p.detach().numpy().copy()

    store["lr/base"] = np.array(LR)
    for sched_name, make in SCHEDULES.items():
        p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([p], lr=LR)
        sched = make(opt)
        lrs = []
        for _ in range(SCHEDULE_STEPS):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        store[f"lr/{sched_name}"] = np.array(lrs, dtype=np.float64)

    path = fixture_path("sgd", "optim")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **store)
    os.replace(tmp, path)
    return f"{path}: {len(store)} entries, {os.path.getsize(path) / 1e3:.1f} kB"


if __name__ == "__main__":
    print(main())
