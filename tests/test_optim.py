"""Tests for minires.train.optim: SGD against a NumPy re-derivation and PyTorch fixtures, schedules
against PyTorch's values, resuming from a saved state, float32 kept float32, and bad inputs.

The fixture is made by tools/make_optim_fixture.py (its docstring describes the format).
"""
import json
import math
import os

import numpy as np
import pytest

from minires.backend import to_numpy
from minires.train.optim import (SGD, ConstantLR, CosineLR, LinearWarmup, MultiStepLR, make_schedule)

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "optim", "sgd_reference.npz")



class P:
    """A stand-in for minires.nn.Parameter: just .data and .grad."""

    def __init__(self, data, grad=None):
        self.data = data
        self.grad = data * 0 if grad is None else grad


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURE, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["meta"] = json.loads(str(arrays["meta"]))
    return arrays


def fixture_params(ref, xp, dtype):
    n = len(ref["meta"]["shapes"])
    # xp.array copies: SGD updates in place and must not write into the fixture's arrays
    return [P(xp.array(ref[f"init_p{i}"], dtype=dtype)) for i in range(n)]


def set_fixture_grads(ref, params, s, xp):
    for i, p in enumerate(params):
        p.grad[...] = xp.asarray(ref[f"grad_s{s}_p{i}"], dtype=p.data.dtype)


def numpy_sgd(init, grads, lr, momentum, weight_decay, nesterov, dampening):
    """torch's SGD written out again, one parameter at a time, with a velocity v."""
    out = []
    for i, p in enumerate(init):
        p, v = p.copy(), None
        for step_grads in grads:
            d_p = step_grads[i] + weight_decay * p
            if momentum:
                v = d_p.copy() if v is None else momentum * v + (1 - dampening) * d_p
                d_p = d_p + momentum * v if nesterov else v
            p = p - lr * d_p
        out.append(p)
    return out


# ---------------------------------------------------------------------------------------------- SGD

CASES = ["plain", "momentum", "nesterov", "dampening"]


@pytest.mark.parametrize("case", CASES)
def test_sgd_matches_numpy_rederivation(case, ref):
    hyper = ref["meta"]["sgd_cases"][case]
    rng = np.random.default_rng(7)
    init = [rng.standard_normal(s) for s in [(4, 3), (6,)]]
    grads = [[rng.standard_normal(a.shape) for a in init] for _ in range(5)]
    params = [P(a.copy()) for a in init]
    opt = SGD(params, **hyper)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad[...] = g
        opt.step()
    expected = numpy_sgd(init, grads, **hyper)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.data, e, rtol=1e-13, atol=1e-15)
    assert opt.step_count == 5


# float32: a few units in the last place of values of size ~1 (torch rounds in a different order)
@pytest.mark.parametrize("dt,dtype,tol", [("f64", np.float64, 1e-12), ("f32", np.float32, 1e-6)])
@pytest.mark.parametrize("case", CASES)
def test_sgd_matches_torch_fixture(case, dt, dtype, tol, xp, ref):   # xp: [numpy], [strict], [cupy]
    hyper = ref["meta"]["sgd_cases"][case]
    params = fixture_params(ref, xp, dtype)
    opt = SGD(iter(params), **hyper)  # a generator-like iterable is fine
    for s in range(1, ref["meta"]["n_steps"] + 1):
        set_fixture_grads(ref, params, s, xp)
        opt.step()
        for i, p in enumerate(params):
            assert p.data.dtype == dtype
            np.testing.assert_allclose(to_numpy(p.data), ref[f"{case}_{dt}_s{s}_p{i}"], rtol=tol, atol=tol)
    if hyper["momentum"]:
        for i, b in enumerate(opt.buffers):
            assert b.dtype == dtype
            np.testing.assert_allclose(to_numpy(b), ref[f"{case}_{dt}_buf_p{i}"], rtol=tol, atol=tol)


def test_step_updates_in_place_and_leaves_grad_alone():
    p = P(np.ones((2, 3)), np.full((2, 3), 0.5))
    data, grad = p.data, p.grad
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step()
    assert p.data is data and p.grad is grad
    np.testing.assert_allclose(p.grad, 0.5)  # weight decay and momentum did not write into grad
    np.testing.assert_allclose(p.data, 1 - 0.1 * (0.5 + 0.01))
    # the first momentum buffer is a copy: zeroing grad must not change it
    opt.zero_grad()
    assert p.grad is grad and not p.grad.any()
    np.testing.assert_allclose(opt.buffers[0], 0.51)


def test_float32_stays_float32_even_with_numpy_float64_lr():
    p = P(np.ones(4, dtype=np.float32), np.full(4, 0.25, dtype=np.float32))
    opt = SGD([p], lr=np.float64(0.1), momentum=0.9, weight_decay=5e-4, nesterov=True)
    opt.lr = np.float64(0.05)  # what a schedule computed with NumPy might hand over
    for _ in range(3):
        opt.step()
    assert p.data.dtype == np.float32 and opt.buffers[0].dtype == np.float32
    assert type(opt.lr) is float


def test_schedule_lr_is_used_by_the_next_step():
    p = P(np.zeros(1), np.ones(1))
    opt = SGD([p], lr=1.0)
    sched = MultiStepLR(opt, milestones=[1], gamma=0.1)
    opt.step()      # lr 1.0
    sched.step()
    opt.step()      # lr 0.1
    np.testing.assert_allclose(p.data, [-1.1])


# ------------------------------------------------------------------------------ resuming (state_dict)

def save_and_load(state, folder):
    """Round-trip a state through the files a checkpoint would use: JSON + .npz."""
    with open(folder / "hyper.json", "w") as f:
        json.dump(state["hyper"], f)
    np.savez(folder / "buffers.npz", *state["buffers"])
    with open(folder / "hyper.json") as f:
        hyper = json.load(f)
    with np.load(folder / "buffers.npz") as f:
        buffers = [f[f"arr_{i}"] for i in range(len(f.files))]
    return {"hyper": hyper, "buffers": buffers}


@pytest.mark.parametrize("saved_after", [0, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_resume_gives_identical_updates(saved_after, dtype, tmp_path):
    rng = np.random.default_rng(3)
    init = [rng.standard_normal((3, 2)).astype(dtype), rng.standard_normal(5).astype(dtype)]
    grads = [[rng.standard_normal(a.shape).astype(dtype) for a in init] for _ in range(5)]

    def run(params, opt, steps):
        for step_grads in steps:
            for p, g in zip(params, step_grads):
                p.grad[...] = g
            opt.step()

    hyper = dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    params = [P(a.copy()) for a in init]
    opt = SGD(params, **hyper)
    run(params, opt, grads[:saved_after])
    state = save_and_load(opt.state_dict(), tmp_path)
    saved_data = [p.data.copy() for p in params]
    run(params, opt, grads[saved_after:])  # the uninterrupted run

    resumed = [P(d) for d in saved_data]
    opt2 = SGD(resumed, lr=0.5)  # deliberately different settings: the state must win
    opt2.load_state_dict(state)
    assert opt2.step_count == saved_after and opt2.momentum == 0.9 and opt2.nesterov
    run(resumed, opt2, grads[saved_after:])
    for p, q in zip(params, resumed):
        assert q.data.dtype == dtype
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_is_a_copy():
    p = P(np.ones(3), np.ones(3))
    opt = SGD([p], lr=0.1, momentum=0.9)
    opt.step()
    state = opt.state_dict()
    opt.step()
    np.testing.assert_allclose(state["buffers"][0], 1.0)
    json.dumps(state["hyper"])  # plain JSON
    assert state["hyper"]["step_count"] == 1


def test_load_state_dict_rejects_mismatches():
    opt = SGD([P(np.ones(3), np.ones(3))], lr=0.1, momentum=0.9)
    opt.step()
    state = opt.state_dict()
    with pytest.raises(ValueError, match="saved for 1 parameters, this optimizer has 2"):
        SGD([P(np.ones(3)), P(np.ones(2))], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match=r"buffer 0 has shape \(3,\), parameter 0 has shape \(4,\)"):
        SGD([P(np.ones(4))], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match="not an SGD state"):
        SGD([P(np.ones(3))], lr=0.1).load_state_dict({"hyper": {"kind": "Adam"}, "buffers": []})
    with pytest.raises(ValueError, match="'hyper' and 'buffers'"):
        SGD([P(np.ones(3))], lr=0.1).load_state_dict({"lr": 0.1})
    with pytest.raises(ValueError, match=r"the SGD state lacks \['step_count'\]"):
        hyper = {k: v for k, v in state["hyper"].items() if k != "step_count"}
        SGD([P(np.ones(3))], lr=0.1).load_state_dict({"hyper": hyper, "buffers": []})


# ------------------------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("kwargs,message", [
    (dict(lr=0.0), "lr must be a finite number > 0"),
    (dict(lr=-0.1), "lr must be a finite number > 0"),
    (dict(lr=float("nan")), "lr must be a finite number"),
    (dict(lr=0.1, momentum=-0.5), "momentum must be a finite number >= 0"),
    (dict(lr=0.1, weight_decay=-1e-4), "weight_decay must be"),
    (dict(lr=0.1, nesterov=True), "Nesterov momentum needs momentum > 0"),
    (dict(lr=0.1, momentum=0.9, nesterov=True, dampening=0.1), "and dampening = 0"),
    (dict(lr=0.1, momentum=0.9, dampening=1.5), "dampening must be between 0 and 1"),
])
def test_bad_hyper_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGD([P(np.ones(2))], **kwargs)


def test_bad_lr_type_and_bad_lr_later():
    with pytest.raises(TypeError, match="lr must be a number, got 'fast'"):
        SGD([P(np.ones(2))], lr="fast")
    opt = SGD([P(np.ones(2))], lr=0.1)
    with pytest.raises(ValueError, match="lr must be"):
        opt.lr = -1


def test_bad_parameter_lists():
    with pytest.raises(ValueError, match="empty list of parameters"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty list of parameters"):
        SGD((p for p in []), lr=0.1)
    p = P(np.ones(2))
    with pytest.raises(TypeError, match="iterable of parameters.*got a single P"):
        SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="has no .data and .grad"):
        SGD([np.ones(2)], lr=0.1)
    with pytest.raises(TypeError, match="floating-point array, got int64"):
        SGD([P(np.ones(2, dtype=np.int64))], lr=0.1)


def test_generator_is_materialised_once():
    params = [P(np.ones(2), np.ones(2)) for _ in range(3)]
    opt = SGD((p for p in params), lr=0.5)
    opt.step()
    opt.step()  # a second pass must still see all three parameters
    for p in params:
        np.testing.assert_allclose(p.data, 0.0)


def test_bad_gradients():
    with pytest.raises(ValueError, match=r"grad must match data, expected shape \(2, 3\) dtype float64, got shape \(3, 2\)"):
        SGD([P(np.ones((2, 3)), np.ones((3, 2)))], lr=0.1)
    with pytest.raises(ValueError, match="expected shape \\(2,\\) dtype float32, got shape \\(2,\\) dtype float64"):
        SGD([P(np.ones(2, np.float32), np.ones(2))], lr=0.1)
    p = P(np.ones(2))
    opt = SGD([p], lr=0.1)
    p.grad = np.ones(5)  # replaced after construction: caught at step time, before any update
    with pytest.raises(ValueError, match="parameter 0: grad must match data"):
        opt.step()
    p.grad = None
    with pytest.raises(ValueError, match="grad is None"):
        opt.step()
    np.testing.assert_allclose(p.data, 1.0)
    # a bad gradient on the last parameter stops the step before the first one moves
    first, last = P(np.ones(2), np.ones(2)), P(np.ones(3), np.ones(3))
    opt = SGD([first, last], lr=0.1)
    last.grad = np.ones(3, dtype=np.float32)
    with pytest.raises(ValueError, match="parameter 1: grad must match data"):
        opt.step()
    np.testing.assert_allclose(first.data, 1.0)
    assert opt.step_count == 0


# -------------------------------------------------------------------------------------- schedules

def lr_sequence(sched, steps):
    values = [sched.optimizer.lr]
    for _ in range(steps):
        sched.step()
        assert sched.optimizer.lr == sched.lr
        values.append(sched.optimizer.lr)
    return np.array(values)


def new_opt(lr=0.1):
    return SGD([P(np.zeros(1))], lr=lr)


SCHEDULE_BUILDERS = {
    "multistep": lambda o: MultiStepLR(o, milestones=[5, 12], gamma=0.1),
    "cosine": lambda o: CosineLR(o, total_steps=20),
    "cosine_min": lambda o: CosineLR(o, total_steps=20, min_lr=0.001),
    "linear": lambda o: LinearWarmup(o, warmup_steps=5, start_factor=0.1),
    "warmup_cosine": lambda o: LinearWarmup(o, 5, start_factor=0.1, after=CosineLR(o, 15)),
}
FACTORY_BUILDERS = {
    "multistep": lambda o: make_schedule("step", o, 20, milestones=[12, 5]),
    "cosine": lambda o: make_schedule("cosine", o, 20),
    "cosine_min": lambda o: make_schedule("cosine", o, 20, min_lr=0.001),
    "linear": lambda o: make_schedule("constant", o, 20, warmup_steps=5, warmup_start_factor=0.1),
    "warmup_cosine": lambda o: make_schedule("cosine", o, 20, warmup_steps=5, warmup_start_factor=0.1),
}


@pytest.mark.parametrize("builders", [SCHEDULE_BUILDERS, FACTORY_BUILDERS], ids=["classes", "factory"])
@pytest.mark.parametrize("name", list(SCHEDULE_BUILDERS))
def test_schedules_match_torch(name, builders, ref):
    sched = builders[name](new_opt(ref["meta"]["base_lr"]))
    values = lr_sequence(sched, ref["meta"]["sched_steps"])
    np.testing.assert_allclose(values, ref[f"lr_{name}"], rtol=1e-12, atol=1e-15)


def test_schedule_closed_forms():
    sched = MultiStepLR(new_opt(0.1), milestones=[32000, 48000])
    assert [sched.lr_at(t) for t in (0, 31999, 32000, 48000)] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    cos = CosineLR(new_opt(1.0), total_steps=10, min_lr=0.1)
    assert cos.lr_at(5) == pytest.approx(0.55)
    assert cos.lr_at(10) == cos.lr_at(25) == pytest.approx(0.1)  # stays at min_lr after the end
    assert ConstantLR(new_opt(0.3)).lr_at(10**6) == 0.3
    # a milestone given twice divides twice, as in torch's MultiStepLR
    assert MultiStepLR(new_opt(1.0), [3, 3]).lr_at(3) == pytest.approx(0.01)


def test_make_schedule_default_milestones_are_the_papers():
    sched = make_schedule("step", new_opt(0.1), total_steps=64000)
    assert sched.milestones == [32000, 48000] and sched.gamma == 0.1
    warm = make_schedule("step", new_opt(0.1), total_steps=1100, warmup_steps=100)
    assert warm.after.milestones == [500, 750]
    assert warm.lr_at(0) == pytest.approx(0.01) and warm.lr_at(100 + 500) == pytest.approx(0.01)


@pytest.mark.parametrize("name", list(SCHEDULE_BUILDERS))
def test_schedule_resume(name):
    opt = new_opt(0.1)
    sched = SCHEDULE_BUILDERS[name](opt)
    lr_sequence(sched, 7)
    state = json.loads(json.dumps(sched.state_dict()))  # plain JSON
    rest = lr_sequence(sched, 10)

    opt2 = new_opt(0.1)
    sched2 = SCHEDULE_BUILDERS[name](opt2)
    sched2.load_state_dict(state)
    assert opt2.lr == rest[0] and sched2.t == 7
    np.testing.assert_array_equal(lr_sequence(sched2, 10), rest)


def test_warmup_keeps_the_next_schedule_clock():
    opt = new_opt(0.1)
    sched = LinearWarmup(opt, 5, after=CosineLR(opt, 15))
    lr_sequence(sched, 8)
    assert sched.after.t == 3 and sched.lr == sched.after.lr


def test_schedule_bad_inputs():
    with pytest.raises(ValueError, match=r"schedule must be one of \('step', 'cosine', 'constant'\), got 'exp'"):
        make_schedule("exp", new_opt(), 100)
    with pytest.raises(ValueError, match=r"warmup_steps \(100\) must be smaller than total_steps \(100\)"):
        make_schedule("cosine", new_opt(), 100, warmup_steps=100)
    with pytest.raises(ValueError, match="total_steps must be a finite number >= 1"):
        CosineLR(new_opt(), total_steps=0)
    with pytest.raises(ValueError, match=r"start_factor must be in \(0, 1\]"):
        LinearWarmup(new_opt(), 5, start_factor=2.0)
    with pytest.raises(ValueError, match="start_factor must be a finite number > 0"):
        LinearWarmup(new_opt(), 5, start_factor=0.0)
    with pytest.raises(ValueError, match="milestones must be positive"):
        MultiStepLR(new_opt(), [0, 10])
    with pytest.raises(TypeError, match="milestones must be a list"):
        MultiStepLR(new_opt(), 10)
    with pytest.raises(ValueError, match="drives a different optimizer"):
        LinearWarmup(new_opt(), 5, after=CosineLR(new_opt(), 10))
    with pytest.raises(ValueError, match="cannot load a 'step' schedule state into a 'cosine' schedule"):
        CosineLR(new_opt(), 10).load_state_dict(MultiStepLR(new_opt(), [3]).state_dict())
    with pytest.raises(ValueError, match=r"the 'cosine' schedule state lacks \['min_lr'\]"):
        CosineLR(new_opt(), 10).load_state_dict({"kind": "cosine", "base_lr": 0.1, "t": 3, "total_steps": 10})
    assert math.isfinite(CosineLR(new_opt(), 10).lr)
