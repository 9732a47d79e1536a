"""Checkers for the backward-pass exercises (tutorials/07_gradcheck_exercises.ipynb).

You write a backward as a plain function; a checker runs it through
``minires.teach.gradcheck.check_function`` against the forward defined here and prints PASS,
"not done yet", or what is wrong: which gradient (dx, dW, db, dgamma ...), its relative
error, its worst entries and, when the mistake is a common one, a hint about it.

    >>> import minires.teach.exercises as ex
    >>> def relu_backward(x, dy):
    ...     return dy * (x > 0)
    >>> ex.check_relu(relu_backward).ok          # prints the report, then:
    True

Design: a function that raises NotImplementedError (the placeholder in the exercise
notebook) is reported as "not done yet" and the checker returns normally, so that the
exercise notebook runs from top to bottom before any exercise is done. Any other exception
raised by your function is reported too (its type, message and the line of your code), not
raised; a NumPy shape error is translated: the shape your code made, the one that was needed
(dy's, x's ...) and, where the exercise knows the mistake, a hint (a projection shortcut's stride). Every checker returns an ExerciseResult: ``.ok``, ``.status`` ('pass', 'fail',
'not done', 'error'), ``.tensor`` (the first wrong gradient), ``.hints``, ``.report``.

The forwards (float64 NumPy), and the backwards you write, which take the forward's
inputs, then dy = dL/dy (same shape as the output):

    relu(x)                                  relu_backward(x, dy) -> dx
    linear(x, W, b)    y = x @ W.T + b       linear_backward(x, W, b, dy) -> (dx, dW, db)
    conv2d(x, W, b=None, stride=1, padding=0)
                       conv2d_backward(x, W, b, dy, stride=1, padding=0) -> (dx, dW, db)
    batchnorm(x, gamma, beta, eps=1e-5)      (training mode: the batch's own statistics)
                       batchnorm_backward(x, gamma, beta, dy, eps=1e-5) -> (dx, dgamma, dbeta)
    basic_block(x, W1, gamma1, beta1, W2, gamma2, beta2)
                       = relu(batchnorm(conv2d(relu(batchnorm(conv2d(x, W1, padding=1), gamma1, beta1)),
                                               W2, padding=1), gamma2, beta2) + x)
                       basic_block_backward(x, W1, gamma1, beta1, W2, gamma2, beta2, dy)
                           -> (dx, dW1, dgamma1, dbeta1, dW2, dgamma2, dbeta2)
    maxpool(x, kernel_size=2, stride=2, padding=0)
                       maxpool_backward(x, dy, kernel_size=2, stride=2, padding=0) -> dx
                       (also checked by a rule on inputs with ties: each window's dy reaches its
                       maxima once, in total)
    projection_block(x, W1, gamma1, beta1, W2, gamma2, beta2, Ws, gammas, betas)
                       = relu(bn2(conv2(relu(bn1(conv1(x, stride 2, padding 1))))) + bn_s(conv_s(x, 1x1, stride 2)))
                       projection_block_backward(x, W1, ..., betas, dy) -> (dx, dW1, ..., dWs, dgammas, dbetas)
    grouped_conv2d(x, W, groups=4)  (3x3, stride 1, padding 1, no bias; W (O, C/groups, 3, 3))
                       grouped_conv2d_backward(x, W, dy, groups=4) -> (dx, dW)
                       (checked with C = 4 input channels, O = 6 filters, groups=2: C != O, so slicing dy
                       and W by the input channels' groups fails)

Shapes: x (N, IN) and W (OUT, IN) for linear; x (N, C, H, W), W (O, C, KH, KW) for conv2d;
gamma, beta (C,) for batchnorm.

This file holds the checker; the exercises it checks (forwards, inputs, right gradients, known
mistakes) are in exercises_layers.py (relu, linear, conv2d, batchnorm, maxpool, grouped_conv2d)
and exercises_blocks.py (basic_block, projection_block), in the format described in
exercises_common.py. EXERCISES merges the two, in the notebook's order.
"""
import os
import re
import traceback

import numpy as np

from .exercises_blocks import EXERCISES as _BLOCKS, basic_block, projection_block
from .exercises_layers import EXERCISES as _LAYERS, batchnorm, conv2d, grouped_conv2d, linear, maxpool, relu
from .gradcheck import check_function, relative_error

_ORDER = ("relu", "linear", "conv2d", "batchnorm", "basic_block", "maxpool", "projection_block", "grouped_conv2d")
_SPECS = {**_LAYERS, **_BLOCKS}
EXERCISES = {name: _SPECS[name] for name in _ORDER if name in _SPECS} | _SPECS  # the notebook's order, then any new
TOL = 1e-6  # float64 central differences agree with a right backward to ~1e-9


# ----------------------------------------------------------------------------- the result
class ExerciseResult:
    """What a checker found: ``ok``, ``status``, ``tensor`` (first wrong gradient), ``hints``, ``report``."""

    def __init__(self, name, status, report, tensor=None, hints=(), gradcheck=None):
        self.name, self.status, self.report = name, status, report
        self.tensor, self.hints, self.gradcheck = tensor, list(hints), gradcheck

    @property
    def ok(self):
        return self.status == "pass"

    def __bool__(self):
        return self.ok

    def __str__(self):
        return self.report

    def __repr__(self):
        return f"ExerciseResult({self.name!r}, status={self.status!r})"


class _Problem(Exception):
    """The answer has the wrong form (count, type or shape of the gradients); the message says how."""

    def __init__(self, message, tensor=None):
        super().__init__(message)
        self.tensor = tensor


# ----------------------------------------------------------------------------- the checker
def check(name, fn, verbose=True):
    """Check the backward ``fn`` for exercise ``name`` (one of EXERCISES); print and return an ExerciseResult."""
    if name not in EXERCISES:
        raise ValueError(f"check: unknown exercise {name!r}; expected one of {sorted(EXERCISES)}")
    if not callable(fn):
        raise TypeError(f"check({name!r}, fn): fn must be your backward function, got {type(fn).__name__}")
    spec = EXERCISES[name]
    for case in spec["cases"]:  # every case must pass; the first one that does not is reported
        result = _check_case(name, spec, fn, case)
        if not result.ok:
            break
    if verbose:
        print(result.report)
    return result


def _check_case(name, spec, fn, case):
    rng = np.random.default_rng(12)
    inputs = spec["inputs"](rng)
    grad_names = spec["grads"]
    fn_name = getattr(fn, "__name__", name)
    title = f"{fn_name} (with {', '.join(f'{k}={v}' for k, v in case.items())})" if case else fn_name
    yours = {}
    watch = _KinkWatch(spec, case, inputs) if spec.get("smooth") or "kinks" in spec else None

    def forward(*arrays):
        if watch:
            watch.see(arrays)
        return spec["forward"](*arrays, **case)

    def backward(dy):
        out = fn(*[a.copy() for a in inputs], dy.copy(), **case)  # copies: nudging must not see your edits
        yours.update(zip(grad_names, _as_grads(out, grad_names, inputs, spec["wrong"](*inputs, dy, **case))))
        yours["dy"] = dy
        return [yours[g] for g in grad_names]

    try:
        gc = check_function(forward, backward, *inputs, names=list(grad_names), tol=TOL, max_entries=10**6,
                            watch=watch)
    except NotImplementedError as e:  # the placeholder: say so, and let the notebook go on
        detail = f": {e}" if str(e) and not str(e).startswith(fn_name) else ""  # e.g. a helper not written yet
        return ExerciseResult(name, "not done", f"{fn_name}: not done yet (NotImplementedError{detail}). "
                                                f"Write it, run its cell, then run this check again.")
    except _Problem as e:
        return ExerciseResult(name, "fail", f"{title}: FAIL\n  {e}", tensor=e.tensor, hints=[str(e)])
    except Exception as e:  # anything else your code raised: say what and where, do not crash the notebook
        return _error(name, title, spec, e, inputs, case)
    broken = gc.ok and spec.get("rules", lambda *a, **k: None)(fn, **case)
    if broken:  # a rule the gradient check cannot see (max-pool's ties)
        t, message = broken
        return ExerciseResult(name, "fail", f"{title}: FAIL (the gradient check passes, a rule does not)\n"
                                            f"  {t:<8} WRONG\n           hint: {t}: {message}",
                              tensor=t, hints=[f"{t}: {message}"], gradcheck=gc)
    if gc.ok:
        cases = "; ".join(", ".join(f"{k}={v}" for k, v in c.items()) for c in spec["cases"] if c)
        return ExerciseResult(name, "pass", f"{fn_name}: PASS (largest relative error {gc.max_error:.1e}"
                                            + (f"; every case passes: {cases})" if cases else ")"), gradcheck=gc)
    return _failure(name, title, spec, gc, yours, inputs, case)


def _failure(name, title, spec, gc, yours, inputs, case):
    """The FAIL report: each gradient ok or WRONG, its worst entries and a hint."""
    reference = spec["reference"](*inputs, yours["dy"], **case)
    lines, hints, first = [f"{title}: FAIL"], [], None
    wrong_tensors = {row["tensor"] for row in gc.rows if not row["error"] < TOL}
    for row in gc.rows:
        t = row["tensor"]
        if row["error"] < TOL:
            lines.append(f"  {t:<8} ok      (relative error {row['error']:.1e})")
            continue
        first = first or t
        lines.append(f"  {t:<8} WRONG   (relative error {row['error']:.1e}, tolerance {TOL:.0e})")
        lines.append(f"           worst entries, yours vs numerical: "
                     f"{_worst(yours[t], row['numeric'].reshape(yours[t].shape))}")
        hint = _hint(t, yours[t], reference[t], spec, inputs, yours["dy"], case, wrong_tensors)
        hints.append(hint)
        lines.append(f"           hint: {hint}")
    return ExerciseResult(name, "fail", "\n".join(lines), tensor=first, hints=hints, gradcheck=gc)


class _KinkWatch:
    """KinkWatch's ``watched`` and ``crossed()`` (minires/teach/gradcheck.py) for an exercise's forward:
    ``spec["kinks"](*inputs, **case)`` gives each kink's pattern (the sign of a ReLU's input, each
    max-pool window's winner), the inputs' own the reference; a ``smooth`` exercise has none, so a
    failing row of its table says "the gradient is wrong", never "a kink?"."""

    def __init__(self, spec, case, inputs):
        self.kinks, self.case = spec.get("kinks", lambda *a, **k: {}), case
        self.reference = self.now = self.kinks(*inputs, **case)
        self.watched = list(self.reference)

    def see(self, arrays):
        self.now = self.kinks(*arrays, **self.case)

    def crossed(self):
        return next((k for k, p in self.now.items() if np.any(p != self.reference[k])), "")


def _as_grads(out, grad_names, inputs, wrong=()):
    """Your function's return value -> a list of float64 arrays, or a _Problem saying what is off
    (for a wrong shape, the hint of a known mistake ``wrong`` of that shape, if there is one)."""
    n = len(grad_names)
    if n == 1 and not isinstance(out, (tuple, list)):
        out = [out]
    if not isinstance(out, (tuple, list)) or len(out) != n:
        got = f"{len(out)} values" if isinstance(out, (tuple, list)) else f"one {type(out).__name__}"
        raise _Problem(f"your function should return {n} arrays ({', '.join(grad_names)}), got {got}")
    grads = []
    for g, a, value in zip(grad_names, inputs, out):
        if not hasattr(value, "shape"):
            raise _Problem(f"{g} should be an array of shape {a.shape}, got {type(value).__name__}", g)
        if tuple(value.shape) != tuple(a.shape):
            known = [hint for t, w, hint in wrong if t == g and np.shape(w) == tuple(value.shape)]
            raise _Problem(f"{g} should have shape {a.shape} (the shape of {g[1:]}), got {tuple(value.shape)}: "
                           + (known[0] if known else _shape_hint(tuple(value.shape), tuple(a.shape))), g)
        grads.append(np.asarray(value, dtype=np.float64))
    return grads


def _shape_hint(got, want):
    if got == want[::-1]:
        return "it is transposed; check the order of the matrix product (and where the transpose goes)"
    if sorted(got) == sorted(want):
        return "the right sizes in the wrong order: an axis is swapped; check your transpose/reshape"
    if int(np.prod(got)) == int(np.prod(want)):
        return "the right number of entries: a reshape (or keepdims) is missing"
    return "check which axes you sum over (a gradient has the shape of the thing it is the gradient of)"


# ----------------------------------------------------------------------------- errors inside your code
_SHAPE_WORDS = ("broadcast", "mismatch", "not aligned", "cannot reshape", "different from")


def _error(name, title, spec, e, inputs, case):
    """The ERROR report: what your function raised and on which line; a shape error is translated."""
    grad_names = spec["grads"]
    shapes = ", ".join(f"{g[1:]} {a.shape}" for g, a in zip(grad_names, inputs))
    dy_shape = np.shape(spec["forward"](*inputs, **case))
    report = (f"{title}: ERROR, your function raised {type(e).__name__}: {e}{_your_line(e)}\n"
              f"  (it was called with {shapes}, dy {dy_shape})")
    hints = _shape_mismatch(e, spec, inputs, dy_shape, case) if isinstance(e, ValueError) and any(
        w in str(e) for w in _SHAPE_WORDS) else []
    report += "".join(f"\n  {'hint: ' if i else ''}{line}" for i, line in enumerate(hints))
    return ExerciseResult(name, "error", report, hints=hints)


def _shape_mismatch(e, spec, inputs, dy_shape, case):
    """A NumPy shape error -> [what your function made where what was needed, then the exercise's hint, if any]."""
    dims = list(dict.fromkeys(_numpy_dims(str(e))))
    if len(dims) < 2:
        return []
    known = _known_dims(spec["grads"], inputs, dy_shape)
    expected = next((d for d, _ in known if d in dims), dims[1])  # NumPy names what it got, then what it wanted
    others = [d for d in dims if d != expected]
    produced = next((d for d in others if type(d) is type(expected)), others[0])  # a shape for a shape, if named
    what = dict(reversed(known))

    def say(d):
        return f"{'shape ' if isinstance(d, tuple) else ''}{d}" + (f" ({what[d]})" if d in what else "")
    lines = [f"a shape mismatch: your function made {say(produced)} where {say(expected)} was needed"]
    code = " ".join(f.line or "" for f in _your_frames(e))
    hint = spec.get("shape_error", lambda *a, **k: None)(produced, expected, code, *inputs, **case)
    return lines + ([hint] if hint else [])


def _numpy_dims(message):
    """The shapes and sizes a NumPy shape error names, in its order: [(2, 3, 6, 6), 72, ...]."""
    found = re.finditer(r"\((\d+(?:,\s*\d+)*),?\)|size (\d+)|different from (\d+)|(\d+) \(dim \d+\)", message)
    return [tuple(int(v) for v in m.group(1).split(",")) if m.group(1) else int(m.group(2) or m.group(3) or m.group(4))
            for m in found]


def _known_dims(grad_names, inputs, dy_shape):
    """[(shape or size, what it is)] of the arrays your function was given, dy's first."""
    known = [(tuple(dy_shape), "dy's shape")]
    for g, shape in [("dy", dy_shape)] + [(g, a.shape) for g, a in zip(grad_names, inputs)]:
        if g != "dy":
            known.append((tuple(shape), f"{g[1:]}'s shape"))
        if len(shape) == 4 and g in ("dy", "dx"):
            N, _, H, W = shape
            hw, whose = ("OH*OW", "dy") if g == "dy" else ("H*W", "x")
            known += [(N * H * W, f"N*{hw} = {N}*{H}*{W}: {whose}'s pixels"), (H * W, f"{hw} = {H}*{W}")]
    return known


def _your_frames(exc):
    """The frames of the traceback that are outside minires.teach: your code."""
    here = os.path.dirname(os.path.abspath(__file__))
    return [f for f in traceback.extract_tb(exc.__traceback__) if not os.path.abspath(f.filename).startswith(here)]


def _worst(yours, numeric, k=3):
    """The k entries where your gradient and the numerical one differ most, as text."""
    diff = np.abs(yours - numeric).reshape(-1)
    parts = []
    for flat in np.argsort(-diff)[:k]:
        idx = tuple(int(i) for i in np.unravel_index(flat, yours.shape))
        parts.append(f"{list(idx)} {yours[idx]:+.4f} vs {numeric[idx]:+.4f}")
    return "; ".join(parts)


def _hint(t, yours, right, spec, inputs, dy, case, wrong_tensors):
    """A hint for the wrong gradient ``t``: a known mistake it equals, else a pattern it shows, else
    where it is, from which of the exercise's gradients are wrong (``wrong_tensors``)."""
    for tensor, wrong, hint in spec["wrong"](*inputs, dy, **case):
        if tensor == t and np.shape(wrong) == yours.shape and relative_error(yours, wrong) < TOL:
            return f"{t}: {hint}"
    if not np.all(np.isfinite(yours)):
        return f"{t} contains NaN or inf: a division by zero, or the square root of a negative number?"
    if not np.any(yours):
        return f"{t} is all zeros: is it still a placeholder?"
    if relative_error(yours, -right) < TOL:
        return f"{t} has the wrong sign"
    k = float(np.sum(yours * right) / max(float(np.sum(right * right)), 1e-300))
    if k and relative_error(yours, k * right) < TOL:
        frac = f" (about 1/{round(1 / k)})" if abs(1 / k - round(1 / k)) < 1e-3 * abs(1 / k) else ""
        return (f"{t} has the right pattern but is scaled by {k:.4g}{frac}: a stray or missing factor "
                f"(a mean where a sum belongs, a missing 1/M ...)")
    pattern = spec.get("pattern", lambda *a, **k: None)(t, yours, right, *inputs, dy, **case)
    if pattern:
        return f"{t}: {pattern}"
    if wrong_tensors == {t} and t in spec.get("alone", {}):
        return f"{t}: {spec['alone'][t]}"
    where = spec.get("where", lambda *a: None)(t, wrong_tensors)
    if where:
        return f"{t}: {where}"
    general = spec["general"].get(t, "compare your formula with the derivation, term by term")
    return f"{t}: " + (general(case) if callable(general) else general)


def _your_line(exc):
    """' (line N: code)' for the last frame of the traceback that is outside minires, if any."""
    frames = _your_frames(exc)
    if not frames:
        return ""
    f = frames[-1]
    return f"\n  at line {f.lineno} of {f.name}: {(f.line or '').strip()}"


def check_relu(fn, verbose=True):
    """Check ``relu_backward(x, dy) -> dx``."""
    return check("relu", fn, verbose)


def check_linear(fn, verbose=True):
    """Check ``linear_backward(x, W, b, dy) -> (dx, dW, db)`` for y = x @ W.T + b."""
    return check("linear", fn, verbose)


def check_conv2d(fn, verbose=True):
    """Check ``conv2d_backward(x, W, b, dy, stride=1, padding=0) -> (dx, dW, db)``."""
    return check("conv2d", fn, verbose)


def check_batchnorm(fn, verbose=True):
    """Check ``batchnorm_backward(x, gamma, beta, dy, eps=1e-5) -> (dx, dgamma, dbeta)`` (training mode)."""
    return check("batchnorm", fn, verbose)


def check_basic_block(fn, verbose=True):
    """Check ``basic_block_backward(x, W1, gamma1, beta1, W2, gamma2, beta2, dy) -> (dx, dW1, ..., dbeta2)``."""
    return check("basic_block", fn, verbose)


def check_maxpool(fn, verbose=True):
    """Check ``maxpool_backward(x, dy, kernel_size=2, stride=2, padding=0) -> dx`` (and its ties, by a rule)."""
    return check("maxpool", fn, verbose)


def check_projection_block(fn, verbose=True):
    """Check ``projection_block_backward(x, W1, gamma1, beta1, W2, gamma2, beta2, Ws, gammas, betas, dy)``."""
    return check("projection_block", fn, verbose)


def check_grouped_conv2d(fn, verbose=True):
    """Check ``grouped_conv2d_backward(x, W, dy, groups=4) -> (dx, dW)`` (3x3, stride 1, padding 1, no bias)."""
    return check("grouped_conv2d", fn, verbose)


def summary(results):
    """Print one line per ExerciseResult and how many pass; ``results``: a list, or a dict name -> result."""
    results = list(results.values()) if isinstance(results, dict) else list(results)
    for r in results:
        print(f"  {r.name:<16} {r.status}")
    print(f"{sum(r.ok for r in results)} of {len(results)} exercises pass")


__all__ = ["relu", "linear", "conv2d", "batchnorm", "basic_block", "maxpool", "projection_block", "check",
           "check_relu", "check_linear", "check_conv2d", "check_batchnorm", "check_basic_block", "check_maxpool",
           "check_projection_block", "check_grouped_conv2d", "grouped_conv2d", "summary", "ExerciseResult", "EXERCISES"]
