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

Kinks. ReLU and max-pool are not differentiable everywhere: a nudge that carries a hidden
ReLU input across 0 (or breaks a max-pool tie) straddles the kink, and the difference mixes
two slopes. ``check_module`` watches every ReLU and max-pool (:class:`KinkWatch`), so it
knows which differences straddled one, and says so in the table.
"""
import copy
import sys
import time

import numpy as np

from ..backend import to_numpy, xp_of
from ..nn.activation import ReLU
from ..nn.init import get_rng_state, set_rng_state
from ..nn.padding import pad_same
from ..nn.pool import MaxPool2d, maxpool_forward
from ..nn.switches import no_grad

TINY = 1e-12
MODES = ("auto", "entries", "direction")
AUTO_SECONDS = 30    # mode="auto": entry by entry if that should take at most this long, else one direction per tensor
PROGRESS_AFTER = 5   # progress=None: progress lines on stderr if the check should take longer than this,
PROGRESS_EVERY = 5   # at most one every this many seconds
MAX_DIRECTIONS = 3   # mode="direction": directions tried when one straddles a kink at every step


class GradcheckResult:
    """The outcome of a check: one row per tensor, ``ok`` if every error is below ``tol``; ``mode``:
    "entries" or "direction", ``why``: the reason when mode="auto" chose the direction."""

    def __init__(self, name, rows, tol, mode="entries", why=""):
        self.name, self.rows, self.tol = name, rows, tol  # rows: dicts tensor, shape, checked, error, worst, ...
        self.mode, self.why = mode, why

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
        lines = [f"gradient check: {self.name}  (float64, tolerance {self.tol:.0e})"]
        if self.mode == "direction":
            lines.append("  one random direction per tensor" + (f" ({self.why})" if self.why else ""))
        lines.append(f"  {'tensor':<28}{'shape':<20}{'checked':>10}{'rel. error':>13}  result")
        for r in self.rows:
            lines.append(f"  {r['tensor']:<28}{str(r['shape']):<20}{r['checked']:>10}{r['error']:>13.2e}  "
                         + _verdict(r, self.tol))
            if r.get("kinks"):
                lines.append("    " + _kink_note(r))
        lines.append(f"  => {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)

    __repr__ = __str__


def _verdict(row, tol):
    """The result column: ok or FAIL, and how the numbers were measured when it took more than one step."""
    verdict = "ok" if row["error"] < tol else f"FAIL (worst at {row['worst']})"
    if row["error"] != row["error"]:  # nan: nothing could be measured
        verdict = "FAIL (not measured: every difference straddles a kink)"
    if len(row.get("steps", ())) > 1:
        seen, watched = row.get("straddled"), row.get("watched")  # watched: None (not known), [] (smooth)
        why = (f"the step eps straddles a kink in {seen}" if seen else "a kink?" if watched is None else
               f"{'no kink within the step' if watched else 'a smooth function, no kink'}: the gradient is wrong")
        verdict += f"  (re-measured with eps/10 and eps*10: {why})"
    return verdict


def _kink_note(row):
    """The line under a row whose entries (or directions) straddled a kink at every step tried."""
    if "discarded" in row:
        what = f"{row['discarded']} direction(s) discarded"
    else:
        what = f"{row['not_counted']} {'entry' if row['not_counted'] == 1 else 'entries'} not counted"
    return (f"^ {what}: near a kink in {', '.join(row['kinks'])} (a ReLU input within the step of 0, or a "
            f"max-pool tie): the central difference straddles it")


def _shape(a):
    """The shape of an array on either device, or of a Python number (numpy.shape would refuse a CuPy array)."""
    return tuple(a.shape) if hasattr(a, "shape") else np.shape(a)


def relative_error(analytic, numeric, floor=0.0):
    """max|a - n| / max(|a| + |n|): 0 is perfect, ~1e-9 is float64 agreement, ~1 is wrong.
    (The denominator is at least ``floor``.)"""
    a, n = to_numpy(analytic).astype(np.float64), to_numpy(numeric).astype(np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n)) / max(float(np.max(np.abs(a) + np.abs(n))), floor, TINY))


class KinkWatch:
    """Where a module's kinks are: the sign of every ReLU input, the winner of every max-pool window.

    It shadows the forward of each ReLU and MaxPool2d of ``module`` (the checker's own copy) with one that
    also notes that pattern; ``watched`` names them ([]: a smooth module; None: ``KinkWatch(None)``, which
    knows nothing). ``remember()`` keeps the last forward's as the reference; ``crossed()`` names the first
    layer whose pattern the last forward changed ('' if none): a nudge that did that straddled a kink.
    """

    def __init__(self, module):
        self.now, self.reference, self.watched = {}, {}, None if module is None else []
        for layer in module.modules() if module is not None else ():
            if isinstance(layer, (ReLU, MaxPool2d)):
                self._watch(layer)

    def _watch(self, layer):
        forward, name = type(layer).forward.__get__(layer), layer._describe()
        self.watched.append(name)

        def watching_forward(x):
            self.now[name] = _kink_pattern(layer, x)
            return forward(x)

        layer.forward = watching_forward  # an instance attribute, on the checker's copy only

    def remember(self):
        self.reference = dict(self.now)

    def crossed(self):
        for name, pattern in self.now.items():
            if name in self.reference and bool((pattern != self.reference[name]).any()):
                return name
        return ""


def _kink_pattern(layer, x):
    """ReLU: which inputs are positive. Max-pool: which entry wins each window."""
    if isinstance(layer, ReLU):
        return x > 0
    if layer.same:
        x = pad_same(layer, x, -xp_of(x).inf)
    return maxpool_forward(x, layer.kernel_size, layer.stride, layer.padding)[1][0]  # the cache's winners


def _central_difference(loss_fn, nudge, step, watch):
    """(L(+step) - L(-step)) / (2 step), ``nudge(s)`` moving the tensor by s (and nudge(0) back),
    and the kink the two nudges straddle ('' if none)."""
    nudge(step)
    plus, kink = loss_fn(), watch.crossed()
    nudge(-step)
    minus = loss_fn()
    kink = kink or watch.crossed()
    nudge(0)
    return (plus - minus) / (2 * step), kink


def _numeric_entries(loss_fn, array, idx, eps, watch):
    """Central differences of loss_fn() wrt the flat entries ``idx`` of ``array`` (changed in place and
    restored), and for each the kink it straddles."""
    flat = array.reshape(-1)  # a view: nudging it nudges the array the loss reads
    out, kinks = np.empty(len(idx)), np.full(len(idx), "", dtype=object)
    for k, i in enumerate(idx):
        old = float(flat[i])

        def nudge(s):
            flat[i] = old + s

        out[k], kinks[k] = _central_difference(loss_fn, nudge, eps, watch)
    return out, kinks


def _numeric_direction(loss_fn, array, direction, eps, watch):
    """Directional derivative of loss_fn() along ``direction`` (one pair of evaluations), and its kink."""
    old = array.copy()

    def nudge(s):
        array[...] = old + s * direction if s else old

    value, kink = _central_difference(loss_fn, nudge, eps, watch)
    return np.array([value]), np.array([kink], dtype=object)


def _measure(a, measure, eps, tol, floor=0.0):
    """Measure at eps; if that fails, again with eps/10 and eps*10, keeping for each entry the best
    measurement: one that straddles no kink beats one that does, then the closer to the backward.
    A real bug survives this: for a smooth function all three steps agree, not with a wrong backward.
    Returns numeric, kinks (per entry: '' or a kink every step straddled), steps, the kinks eps straddled.
    """
    numeric, kinks = measure(eps)
    if relative_error(a, numeric, floor) < tol:
        return numeric, np.full(len(a), "", dtype=object), [eps], ""
    straddled = ", ".join(sorted(set(kinks) - {""}))
    for step in (eps / 10, eps * 10):
        again, again_kinks = measure(step)
        clean, was_clean = again_kinks == "", kinks == ""
        better = (clean & ~was_clean) | ((clean == was_clean) & (np.abs(again - a) < np.abs(numeric - a)))
        numeric, kinks = np.where(better, again, numeric), np.where(better, again_kinks, kinks)
    return numeric, kinks, [eps, eps / 10, eps * 10], straddled


def _check_tensor(name, array, analytic, loss_fn, rng, eps, max_entries, mode, tol, watch=None):
    """Compare ``analytic`` (the backward's gradient of ``array``) with finite differences; a row.
    Entries whose difference straddled a kink at every step are not counted in the error (the
    row says how many, and where); in direction mode such a direction is redrawn instead."""
    watch = watch or KinkWatch(None)
    analytic, shape = to_numpy(analytic).astype(np.float64), tuple(array.shape)
    if mode == "direction":
        return _check_direction(name, array, analytic, loss_fn, rng, eps, tol, watch)
    size = int(np.prod(shape))
    idx = np.arange(size) if size <= max_entries else np.sort(rng.choice(size, max_entries, replace=False))
    a = analytic.reshape(-1)[idx]
    numeric, kinks, steps, straddled = _measure(
        a, lambda step: _numeric_entries(loss_fn, array, idx, step, watch), eps, tol)
    counted = kinks == ""
    error = relative_error(a[counted], numeric[counted]) if counted.any() or not size else float("nan")
    worst = "-"
    if counted.any():
        worst_k = int(np.argmax(np.where(counted, np.abs(a - numeric), -1.0)))
        worst = tuple(int(v) for v in np.unravel_index(idx[worst_k], shape))
    return dict(tensor=name, shape=shape, checked=len(idx), error=error, worst=worst, analytic=a,
                numeric=numeric, steps=steps, straddled=straddled, kinks=sorted(set(kinks[~counted])),
                not_counted=int((~counted).sum()), watched=watch.watched)


def _check_direction(name, array, analytic, loss_fn, rng, eps, tol, watch):
    """Direction mode: one random unit direction, redrawn while it straddles a kink at every step.
    The error's denominator is at least the typical size of a directional derivative, |gradient| /
    sqrt(size): a direction nearly perpendicular to the gradient gives a tiny one, which float64
    rounding in a deep network would swamp."""
    xp, shape, discarded = xp_of(array), tuple(array.shape), []
    typical = float(np.linalg.norm(analytic)) / np.sqrt(max(analytic.size, 1))
    for _ in range(MAX_DIRECTIONS):
        d = rng.standard_normal(shape)
        d /= max(np.linalg.norm(d), TINY)
        a = np.array([float(np.sum(analytic * d))])
        numeric, kinks, steps, straddled = _measure(
            a, lambda step: _numeric_direction(loss_fn, array, xp.asarray(d), step, watch), eps, tol, typical)
        if not kinks[0]:
            break
        discarded.append(kinks[0])
    error = float("nan") if kinks[0] else relative_error(a, numeric, typical)
    return dict(tensor=name, shape=shape, checked="1 dir", error=error, worst="-", analytic=a, numeric=numeric,
                steps=steps, straddled=straddled, kinks=sorted(set(discarded)), discarded=len(discarded),
                not_counted=int(bool(kinks[0])), watched=watch.watched)


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _duration(seconds):
    """12 s, 6 min, 1.5 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _choose_mode(mode, sizes, max_entries, seconds):
    """(mode, why, estimated seconds) for tensors of ``sizes``, one forward taking ``seconds``."""
    entries = 2 * sum(min(s, max_entries) for s in sizes) * seconds  # two forwards per entry
    why = ""
    if mode == "auto":
        mode = "entries" if entries <= AUTO_SECONDS else "direction"
        why = "" if mode == "entries" else f"mode='auto': entry by entry would take about {_duration(entries)}"
    return mode, why, entries if mode == "entries" else 2 * len(sizes) * seconds


class _Progress:
    """A line on stderr at most every PROGRESS_EVERY seconds of a long check (``show``: None, True, False)."""

    def __init__(self, name, total, mode, estimate, show):
        self.total, self.done = total, 0
        self.show = estimate > PROGRESS_AFTER if show is None else bool(show)
        self.start = self.last = time.perf_counter()
        how = "one direction each" if mode == "direction" else "entry by entry"
        self._say(f"gradient check {name}: {total} tensors, {how}, about {_duration(estimate)} "
                  f"(progress=False: no progress lines)")

    def step(self, tensor):
        self.done += 1
        now = time.perf_counter()
        if now - self.last >= PROGRESS_EVERY or self.done == self.total:
            elapsed = now - self.start
            left = elapsed / self.done * (self.total - self.done)
            self._say(f"  {self.done}/{self.total} tensors ({tensor}), {_duration(elapsed)}"
                      + (f", about {_duration(left)} left" if self.done < self.total else ""))
            self.last = now

    def _say(self, text):
        if self.show:
            print(text, file=sys.stderr, flush=True)


def check_module(module, x, seed=0, eps=1e-6, tol=1e-6, max_entries=200, mode="auto", params=True,
                 progress=None):
    """Check a module's backward against central differences, input and every parameter.

    The module is copied and cast to float64 (the original is left untouched); its mode
    (train/eval) is kept. ``mode="entries"`` checks up to ``max_entries`` random entries of
    each tensor (two forwards each); ``mode="direction"`` checks one random direction per
    tensor (two forwards in all), which is how whole networks check in seconds.
    ``mode="auto"`` (the default) times a forward and checks entry by entry if that should
    take at most AUTO_SECONDS (30 s), else one direction per tensor: layers, blocks and small
    networks take well under a second entry by entry, a whole ResNet-20 on a (2, 3, 32, 32)
    batch minutes to an hour, so it gets the direction (seconds), and the table says so. Name
    the mode for the same numbers on every machine. ``progress``: a line on stderr every few
    seconds; None (the default): if the check should take over PROGRESS_AFTER (5 s).
    Returns a GradcheckResult.

    Every forward gets a fresh copy of x (an in-place first layer may write over its input),
    and a stochastic layer (Dropout) draws the same random numbers in every forward: the
    generator is put back to its state before the first one (``minires.nn.set_rng_state``).
    """
    if mode not in MODES:
        raise ValueError(f"check_module: mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    module = copy.deepcopy(module).to(dtype=np.float64)  # a copy: running stats may move, the original stays
    xp = xp_of(x)
    x = xp.array(x, dtype=np.float64)  # our own copy, nudged in place
    rng = np.random.default_rng([seed, 2718])  # its own stream: never the same numbers as a default_rng(seed) input
    random_state = get_rng_state()

    y = module.forward(x.copy())
    g = xp.asarray(rng.standard_normal(y.shape))  # a random upstream gradient
    module.zero_grad()
    dx = module.backward(g)
    tensors = [("input", x, dx)] + [(n, p.data, p.grad.copy()) for n, p in module.named_parameters() if params]

    watch = KinkWatch(module)

    def loss():
        set_rng_state(random_state)  # the same dropout masks as the forward above
        with no_grad():
            return float(xp.sum(module.forward(x.copy()) * g))

    seconds = min(_seconds(loss) for _ in range(3))  # the un-nudged forward, timed (the best of 3: a busy machine)
    watch.remember()                                  # ... and the kinks' reference
    mode, why, estimate = _choose_mode(mode, [a.size for _, a, _ in tensors], max_entries, seconds)
    name = module._describe() if module.path else type(module).__name__
    report, rows = _Progress(name, len(tensors), mode, estimate, progress), []
    for tensor, array, analytic in tensors:
        rows.append(_check_tensor(tensor, array, analytic, loss, rng, eps, max_entries, mode, tol, watch))
        report.step(tensor)
    return GradcheckResult(name, rows, tol, mode, why)


def check_function(forward, backward, *inputs, names=None, seed=0, eps=1e-6, tol=1e-6, max_entries=200, watch=None):
    """Check a plain function pair: ``forward(*inputs) -> y`` and ``backward(g) -> grads``.

    ``backward`` receives the upstream gradient g (same shape as y) and returns the gradients of the inputs, one
    per input, in order (a single array if there is one input). It may rely on whatever ``forward`` computed last.
    Inputs are copied to float64. ``watch`` (optional): the forward's kinks, as a KinkWatch knows a module's.
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

    rows = [_check_tensor(n, a, an, loss, rng, eps, max_entries, "entries", tol, watch)
            for n, a, an in zip(names, inputs, analytic)]
    return GradcheckResult(getattr(forward, "__name__", "function"), rows, tol)
