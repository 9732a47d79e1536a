"""Numerical gradient checks: is a hand-written backward right?

The idea. For a layer y = f(x) and a fixed random upstream gradient g (what the rest of
the network would send back), the scalar L(x) = sum(f(x) * g) has dL/dx = backward(g).
Nudge one entry of x by +-eps, measure L twice, and the central difference
(L(x + eps) - L(x - eps)) / (2 eps) must agree with the backward's entry to about
eps**2. Everything runs in float64, where that agreement is ~1e-9.

Why a *random* g and not g = 1 (i.e. L = sum(y))? With training-mode batch norm, the
output always sums to N*H*W*bias whatever x is, so dL/dx is exactly zero: a backward
that forgets the mean term and one that is right both look "correct". A random g leaves
no such blind spot.

The error reported for each tensor is ``max|a - n| / max(|a| + |n|)`` over the checked
entries (a: analytic, n: numeric), a relative error that does not blow up on entries
that happen to be near zero.
"""
import copy

import numpy as np

from ..backend import to_numpy, xp_of
from ..nn.init import get_rng_state, set_rng_state
from ..nn.switches import no_grad

TINY = 1e-12


class GradcheckResult:
    """The outcome of a check: one row per tensor, ``ok`` if every error is below ``tol``."""

    def __init__(self, name, rows, tol):
        self.name, self.rows, self.tol = name, rows, tol  # rows: dicts tensor, shape, checked, error, worst

    @property
    def ok(self):
        return all(r["error"] < self.tol for r in self.rows)

    @property
    def max_error(self):
        return max((r["error"] for r in self.rows), default=0.0)

    def errors(self):
        """{tensor name: relative error}."""
        return {r["tensor"]: r["error"] for r in self.rows}

    def __bool__(self):
        return self.ok

    def __str__(self):
        lines = [f"gradient check: {self.name}  (float64, tolerance {self.tol:.0e})",
                 f"  {'tensor':<28}{'shape':<20}{'checked':>10}{'rel. error':>13}  result"]
        for r in self.rows:
            verdict = "ok" if r["error"] < self.tol else f"FAIL (worst at {r['worst']})"
            if len(r.get("steps", ())) > 1:
                verdict += "  (re-measured with eps/10 and eps*10: a kink?)"
            lines.append(f"  {r['tensor']:<28}{str(r['shape']):<20}{r['checked']:>10}{r['error']:>13.2e}  {verdict}")
        lines.append(f"  => {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)

    __repr__ = __str__


def _shape(a):
    """The shape of an array on either device, or of a Python number (numpy.shape would refuse a CuPy array)."""
    return tuple(a.shape) if hasattr(a, "shape") else np.shape(a)


def relative_error(analytic, numeric):
    """max|a - n| / max(|a| + |n|): 0 is perfect, ~1e-9 is float64 agreement, ~1 is wrong."""
    a, n = to_numpy(analytic).astype(np.float64), to_numpy(numeric).astype(np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n)) / max(float(np.max(np.abs(a) + np.abs(n))), TINY))


def _numeric_entries(loss_fn, array, idx, eps):
    """Central differences of loss_fn() wrt the flat entries ``idx`` of ``array`` (changed in place and restored)."""
    flat = array.reshape(-1)  # a view: nudging it nudges the array the loss reads
    out = np.empty(len(idx))
    for k, i in enumerate(idx):
        old = float(flat[i])
        flat[i] = old + eps
        plus = loss_fn()
        flat[i] = old - eps
        minus = loss_fn()
        flat[i] = old
        out[k] = (plus - minus) / (2 * eps)
    return out


def _numeric_direction(loss_fn, array, direction, eps):
    """Directional derivative of loss_fn() along ``direction`` (one pair of evaluations)."""
    old = array.copy()
    array += eps * direction
    plus = loss_fn()
    array[...] = old - eps * direction
    minus = loss_fn()
    array[...] = old
    return (plus - minus) / (2 * eps)


def _check_tensor(name, array, analytic, loss_fn, rng, eps, max_entries, mode, tol):
    """Compare ``analytic`` (the backward's gradient of ``array``) with finite differences; a row.

    Kinks. ReLU and max-pool are not differentiable everywhere: if a nudge of +-eps carries
    some hidden ReLU input across 0, the central difference measures a mix of two slopes and
    disagrees with a backward that is right. Deep inside a network that cannot always be
    avoided, so when a tensor fails, its numbers are measured again with steps eps/10 and
    eps*10, and each entry keeps the measurement closest to the backward. A real bug survives
    this: for a smooth function all three steps agree with each other, not with a wrong
    backward. The row says which steps were used.
    """
    xp = xp_of(array)
    analytic = to_numpy(analytic).astype(np.float64)
    shape = tuple(array.shape)
    if mode == "direction":
        d = rng.standard_normal(shape)
        d /= max(np.linalg.norm(d), TINY)
        a = np.array([float(np.sum(analytic * d))])
        measure = lambda step: np.array([_numeric_direction(loss_fn, array, xp.asarray(d), step)])
        checked, idx = "1 dir", None
    else:
        size = int(np.prod(shape))
        idx = np.arange(size) if size <= max_entries else np.sort(rng.choice(size, max_entries, replace=False))
        a = analytic.reshape(-1)[idx]
        measure = lambda step: _numeric_entries(loss_fn, array, idx, step)
        checked = len(idx)
    numeric, steps = measure(eps), [eps]
    if relative_error(a, numeric) >= tol:  # maybe a kink: measure again with other steps
        for step in (eps / 10, eps * 10):
            again = measure(step)
            numeric = np.where(np.abs(again - a) < np.abs(numeric - a), again, numeric)
            steps.append(step)
    worst = "-"
    if idx is not None and len(idx):
        worst = tuple(int(v) for v in np.unravel_index(idx[int(np.argmax(np.abs(a - numeric)))], shape))
    return dict(tensor=name, shape=shape, checked=checked, error=relative_error(a, numeric), worst=worst,
                analytic=a, numeric=numeric, steps=steps)


def check_module(module, x, seed=0, eps=1e-6, tol=1e-6, max_entries=200, mode="entries", params=True):
    """Check a module's backward against central differences, input and every parameter.

    The module is copied and cast to float64 (the original is left untouched); its mode
    (train/eval) is kept. ``max_entries`` caps how many random entries of each tensor are
    checked; ``mode="direction"`` instead checks one random direction per tensor (two
    forwards each), so whole networks check in seconds. Returns a GradcheckResult.

    Every forward gets a fresh copy of x (an in-place first layer may write over its input),
    and a stochastic layer (Dropout) draws the same random numbers in every forward: the
    generator is put back to its state before the first one (``minires.nn.set_rng_state``).
    """
    module = copy.deepcopy(module).to(dtype=np.float64)  # a copy: running stats may move, the original stays
    xp = xp_of(x)
    x = xp.array(x, dtype=np.float64)  # our own copy, nudged in place
    rng = np.random.default_rng([seed, 2718])  # its own stream: never the same numbers as a default_rng(seed) input
    random_state = get_rng_state()

    y = module.forward(x.copy())
    g = xp.asarray(rng.standard_normal(y.shape))  # a random upstream gradient
    module.zero_grad()
    dx = module.backward(g)
    analytic = {"input": dx, **{n: p.grad.copy() for n, p in module.named_parameters()}}

    def loss():
        set_rng_state(random_state)  # the same dropout masks as the forward above
        with no_grad():
            return float(xp.sum(module.forward(x.copy()) * g))

    rows = [_check_tensor("input", x, analytic["input"], loss, rng, eps, max_entries, mode, tol)]
    if params:
        for name, p in module.named_parameters():
            rows.append(_check_tensor(name, p.data, analytic[name], loss, rng, eps, max_entries, mode, tol))
    return GradcheckResult(module._describe() if module.path else type(module).__name__, rows, tol)


def check_function(forward, backward, *inputs, names=None, seed=0, eps=1e-6, tol=1e-6, max_entries=200):
    """Check a plain function pair: ``forward(*inputs) -> y`` and ``backward(g) -> grads``.

    ``backward`` receives the upstream gradient g (same shape as y) and returns the
    gradients of the inputs, one per input, in order (a single array if there is one
    input). It may rely on whatever ``forward`` computed last. Inputs are copied to float64.
    """
    inputs = [xp_of(a).array(a, dtype=np.float64) for a in inputs]
    names = names or ([f"input{i}" for i in range(len(inputs))] if len(inputs) > 1 else ["input"])
    if len(names) != len(inputs):
        raise ValueError(f"check_function: {len(inputs)} inputs but {len(names)} names")
    rng = np.random.default_rng([seed, 2718])  # its own stream: never the same numbers as a default_rng(seed) input
    y = forward(*inputs)
    xp = xp_of(y)
    g = xp.asarray(rng.standard_normal(_shape(y)))
    grads = backward(g)
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) != len(inputs):
        raise ValueError(f"check_function: backward returned {len(grads)} gradients for {len(inputs)} inputs")
    for name, a, gr in zip(names, inputs, grads):
        if gr is None or _shape(gr) != tuple(a.shape):
            raise ValueError(f"check_function: the gradient of {name} should have shape {tuple(a.shape)}, "
                             f"got {None if gr is None else _shape(gr)}")
    analytic = [to_numpy(gr).astype(np.float64).copy() for gr in grads]

    def loss():
        return float(xp.sum(forward(*inputs) * g))

    rows = [_check_tensor(n, a, an, loss, rng, eps, max_entries, "entries", tol)
            for n, a, an in zip(names, inputs, analytic)]
    return GradcheckResult(getattr(forward, "__name__", "function"), rows, tol)
