"""Regenerate tests/fixtures/optim/sgd_reference.npz with PyTorch (the reference oracle).

    /work/torchvenv/bin/python tools/make_optim_fixture.py      # any Python with torch and numpy

Format of the .npz (every array is plain NumPy; load with allow_pickle=False):

    meta                 0-d str: JSON {"torch_version", "seed", "shapes", "n_steps",
                         "sgd_cases": {case: {lr, momentum, weight_decay, nesterov, dampening}},
                         "schedules": {name: description of the torch scheduler and its settings},
                         "base_lr", "sched_steps"}
    init_p{i}            float64, the starting value of parameter i (shapes from meta["shapes"])
    grad_s{s}_p{i}       float64, the gradient of parameter i at step s = 1..n_steps, drawn from
                         numpy.random.default_rng([seed, s]) in parameter order (standard normal)
    {case}_{dt}_s{s}_p{i}  parameter i after s steps of torch.optim.SGD with the case's settings,
                         dt = "f64" or "f32" (the run in float32 starts from init cast to float32
                         and uses the gradients cast to float32)
    {case}_{dt}_buf_p{i} torch's momentum buffer of parameter i after n_steps (cases with momentum)
    lr_{name}            float64 (sched_steps + 1,): the lr after 0, 1, ..., sched_steps scheduler
                         steps, read from optimizer.param_groups[0]["lr"], base lr meta["base_lr"]
"""
import json
import os
import sys

import numpy as np
import torch

SEED = 1234
SHAPES = [(3, 4), (5,), (2, 3, 2, 2)]
N_STEPS = 3
SGD_CASES = {
    "plain": dict(lr=0.1, momentum=0.0, weight_decay=5e-4, nesterov=False, dampening=0.0),
    "momentum": dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=False, dampening=0.0),
    "nesterov": dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True, dampening=0.0),
    "dampening": dict(lr=0.05, momentum=0.8, weight_decay=0.0, nesterov=False, dampening=0.3),
}
BASE_LR = 0.1
SCHED_STEPS = 20
SCHEDULES = {
    "multistep": "MultiStepLR(milestones=[5, 12], gamma=0.1)",
    "cosine": "CosineAnnealingLR(T_max=20)",
    "cosine_min": "CosineAnnealingLR(T_max=20, eta_min=0.001)",
    "linear": "LinearLR(start_factor=0.1, total_iters=5)",
    "warmup_cosine": "SequentialLR([LinearLR(start_factor=0.1, total_iters=5), "
                     "CosineAnnealingLR(T_max=15)], milestones=[5])",
}


def make_scheduler(name, opt):
    S = torch.optim.lr_scheduler
    if name == "multistep":
        return S.MultiStepLR(opt, milestones=[5, 12], gamma=0.1)
    if name == "cosine":
        return S.CosineAnnealingLR(opt, T_max=20)
    if name == "cosine_min":
        return S.CosineAnnealingLR(opt, T_max=20, eta_min=0.001)
    if name == "linear":
        return S.LinearLR(opt, start_factor=0.1, total_iters=5)
    warm = S.LinearLR(opt, start_factor=0.1, total_iters=5)
    cos = S.CosineAnnealingLR(opt, T_max=15)
    return S.SequentialLR(opt, [warm, cos], milestones=[5])


def main(out_path):
    arrays = {}
    rng = np.random.default_rng(SEED)
    init = [rng.standard_normal(shape) for shape in SHAPES]
    for i, a in enumerate(init):
        arrays[f"init_p{i}"] = a
    grads = {}
    for s in range(1, N_STEPS + 1):
        step_rng = np.random.default_rng([SEED, s])
        grads[s] = [step_rng.standard_normal(shape) for shape in SHAPES]
        for i, g in enumerate(grads[s]):
            arrays[f"grad_s{s}_p{i}"] = g

    for case, hyper in SGD_CASES.items():
        for dt, tdtype in (("f64", torch.float64), ("f32", torch.float32)):
            params = [torch.tensor(a, dtype=tdtype, requires_grad=True) for a in init]
            opt = torch.optim.SGD(params, foreach=False, **hyper)
            for s in range(1, N_STEPS + 1):
                for p, g in zip(params, grads[s]):
                    p.grad = torch.tensor(g, dtype=tdtype)
                opt.step()
                for i, p in enumerate(params):
                    arrays[f"{case}_{dt}_s{s}_p{i}"] = p.detach().numpy().copy()
            if hyper["momentum"] != 0:
                for i, p in enumerate(params):
                    arrays[f"{case}_{dt}_buf_p{i}"] = opt.state[p]["momentum_buffer"].numpy().copy()

    for name in SCHEDULES:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE_LR)
        sched = make_scheduler(name, opt)
        lrs = [opt.param_groups[0]["lr"]]
        for _ in range(SCHED_STEPS):
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        arrays[f"lr_{name}"] = np.array(lrs, dtype=np.float64)

    meta = {"torch_version": torch.__version__, "seed": SEED, "shapes": SHAPES, "n_steps": N_STEPS,
            "sgd_cases": SGD_CASES, "schedules": SCHEDULES, "base_lr": BASE_LR, "sched_steps": SCHED_STEPS}
    arrays["meta"] = np.array(json.dumps(meta))

    # Written atomically: a temporary file in the same folder, then a rename.
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    tmp = out_path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, out_path)
    print(f"wrote {out_path}: {len(arrays)} arrays, torch {torch.__version__}")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "tests", "fixtures", "optim", "sgd_reference.npz")
    main(os.path.normpath(sys.argv[1] if len(sys.argv) > 1 else default))
