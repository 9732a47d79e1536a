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

In Chinese: ``MINIRES_LANG=zh``, or ``lang="zh"`` on ``check`` and each ``check_*`` (None: the
environment's; unset or ``en``: English): every report line and hint, from hints_zh.py's catalog.

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
from .exercises_common import SpecKinkWatch
from .exercises_layers import EXERCISES as _LAYERS, batchnorm, conv2d, grouped_conv2d, linear, maxpool, relu
from .gradcheck import check_function, relative_error
from .hints_zh import language, say

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
def check(name, fn, verbose=True, lang=None):
    """Check the backward ``fn`` for exercise ``name`` (one of EXERCISES); print and return an ExerciseResult.
    ``lang``: 'en' or 'zh' for the report's language; None reads ``MINIRES_LANG`` (unset: English)."""
    lang = language(lang)
    if name not in EXERCISES:
        raise ValueError(f"check: unknown exercise {name!r}; expected one of {sorted(EXERCISES)}")
    if not callable(fn):
        raise TypeError(f"check({name!r}, fn): fn must be your backward function, got {type(fn).__name__}")
    spec = EXERCISES[name]
    for case in spec["cases"]:  # every case must pass; the first one that does not is reported
        result = _check_case(name, spec, fn, case, lang)
        if not result.ok:
            break
    if verbose:
        print(result.report)
    return result


def _check_case(name, spec, fn, case, lang="en"):
    rng = np.random.default_rng(12)
    inputs = spec["inputs"](rng)
    grad_names = spec["grads"]
    fn_name = getattr(fn, "__name__", name)
    title = say("{fn} (with {case})", lang, fn=fn_name, case=", ".join(f"{k}={v}" for k, v in case.items())) \
        if case else fn_name
    yours = {}
    watch = SpecKinkWatch(spec, case, inputs) if spec.get("smooth") or "kinks" in spec else None

    def forward(*arrays):
        if watch:
            watch.see(arrays)
        return spec["forward"](*arrays, **case)

    def backward(dy):
        out = fn(*[a.copy() for a in inputs], dy.copy(), **case)  # copies: nudging must not see your edits
        yours.update(zip(grad_names, _as_grads(out, grad_names, inputs, spec["wrong"](*inputs, dy, **case), lang)))
        yours["dy"] = dy
        return [yours[g] for g in grad_names]

    try:
        gc = check_function(forward, backward, *inputs, names=list(grad_names), tol=TOL, max_entries=10**6,
                            watch=watch)
    except NotImplementedError as e:  # the placeholder: say so, and let the notebook go on
        detail = f": {e}" if str(e) and not str(e).startswith(fn_name) else ""  # e.g. a helper not written yet
        return ExerciseResult(name, "not done", say("{fn}: not done yet (NotImplementedError{detail}). Write it, "
                                                    "run its cell, then run this check again.", lang,
                                                    fn=fn_name, detail=detail))
    except _Problem as e:
        return ExerciseResult(name, "fail", f"{title}: FAIL\n  {e}", tensor=e.tensor, hints=[str(e)])
    except Exception as e:  # anything else your code raised: say what and where, do not crash the notebook
        return _error(name, title, spec, e, inputs, case, lang)
    broken = gc.ok and spec.get("rules", lambda *a, **k: None)(fn, **case)
    if broken:  # a rule the gradient check cannot see (max-pool's ties)
        t, message = broken
        hint = f"{t}: {say(message, lang)}"
        return ExerciseResult(name, "fail", say("{title}: FAIL (the gradient check passes, a rule does not)", lang,
                                                title=title)
                              + f"\n  {t:<8} {say('WRONG', lang)}\n           {say('hint: ', lang)}{hint}",
                              tensor=t, hints=[hint], gradcheck=gc)
    if gc.ok:
        cases = "; ".join(", ".join(f"{k}={v}" for k, v in c.items()) for c in spec["cases"] if c)
        text = "{fn}: PASS (largest relative error {e}; every case passes: {cases})" if cases else \
            "{fn}: PASS (largest relative error {e})"
        return ExerciseResult(name, "pass", say(text, lang, fn=fn_name, e=f"{gc.max_error:.1e}", cases=cases),
                              gradcheck=gc)
    return _failure(name, title, spec, gc, yours, inputs, case, lang)


def _failure(name, title, spec, gc, yours, inputs, case, lang="en"):
    """The FAIL report: each gradient ok or WRONG, its worst entries and a hint."""
    reference = spec["reference"](*inputs, yours["dy"], **case)
    lines, hints, first = [say("{title}: FAIL", lang, title=title)], [], None
    wrong_tensors = {row["tensor"] for row in gc.rows if not row["error"] < TOL}
    for row in gc.rows:
        t = row["tensor"]
        if row["error"] < TOL:
            lines.append(f"  {t:<8} " + say("ok      (relative error {e})", lang, e=f"{row['error']:.1e}"))
            continue
        first = first or t
        lines.append(f"  {t:<8} " + say("WRONG   (relative error {e}, tolerance {tol})", lang,
                                        e=f"{row['error']:.1e}", tol=f"{TOL:.0e}"))
        lines.append("           " + say("worst entries, yours vs numerical: {worst}", lang,
                                         worst=_worst(yours[t], row['numeric'].reshape(yours[t].shape))))
        hint = _hint(t, yours[t], reference[t], spec, inputs, yours["dy"], case, wrong_tensors, lang)
        hints.append(hint)
        lines.append(f"           {say('hint: ', lang)}{hint}")
    return ExerciseResult(name, "fail", "\n".join(lines), tensor=first, hints=hints, gradcheck=gc)


def _as_grads(out, grad_names, inputs, wrong=(), lang="en"):
    """Your function's return value -> a list of float64 arrays, or a _Problem saying what is off
    (for a wrong shape, the hint of a known mistake ``wrong`` of that shape, if there is one)."""
    n = len(grad_names)
    if n == 1 and not isinstance(out, (tuple, list)):
        out = [out]
    if not isinstance(out, (tuple, list)) or len(out) != n:
        got = say("{n} values", lang, n=len(out)) if isinstance(out, (tuple, list)) else \
            say("one {type}", lang, type=type(out).__name__)
        raise _Problem(say("your function should return {n} arrays ({names}), got {got}", lang, n=n,
                           names=", ".join(grad_names), got=got))
    grads = []
    for g, a, value in zip(grad_names, inputs, out):
        if not hasattr(value, "shape"):
            raise _Problem(say("{g} should be an array of shape {shape}, got {type}", lang, g=g, shape=a.shape,
                               type=type(value).__name__), g)
        if tuple(value.shape) != tuple(a.shape):
            known = [hint for t, w, hint in wrong if t == g and np.shape(w) == tuple(value.shape)]
            raise _Problem(say("{g} should have shape {shape} (the shape of {x}), got {got}: ", lang, g=g,
                               shape=a.shape, x=g[1:], got=tuple(value.shape))
                           + say(known[0] if known else _shape_hint(tuple(value.shape), tuple(a.shape)), lang), g)
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


def _error(name, title, spec, e, inputs, case, lang="en"):
    """The ERROR report: what your function raised and on which line; a shape error is translated."""
    grad_names = spec["grads"]
    shapes = ", ".join(f"{g[1:]} {a.shape}" for g, a in zip(grad_names, inputs))
    dy_shape = np.shape(spec["forward"](*inputs, **case))
    report = (say("{title}: ERROR, your function raised {type}: {e}", lang, title=title, type=type(e).__name__, e=e)
              + _your_line(e, lang) + "\n  "
              + say("(it was called with {shapes}, dy {dy_shape})", lang, shapes=shapes, dy_shape=dy_shape))
    hints = _shape_mismatch(e, spec, inputs, dy_shape, case, lang) if isinstance(e, ValueError) and any(
        w in str(e) for w in _SHAPE_WORDS) else []
    report += "".join(f"\n  {say('hint: ', lang) if i else ''}{line}" for i, line in enumerate(hints))
    return ExerciseResult(name, "error", report, hints=hints)


def _shape_mismatch(e, spec, inputs, dy_shape, case, lang="en"):
    """A NumPy shape error -> [what your function made where what was needed, then the exercise's hint, if any]."""
    dims = list(dict.fromkeys(_numpy_dims(str(e))))
    if len(dims) < 2:
        return []
    known = _known_dims(spec["grads"], inputs, dy_shape)
    expected = next((d for d, _ in known if d in dims), dims[1])  # NumPy names what it got, then what it wanted
    others = [d for d in dims if d != expected]
    produced = next((d for d in others if type(d) is type(expected)), others[0])  # a shape for a shape, if named
    what = dict(reversed(known))

    def named(d):
        return (say("shape {d}", lang, d=d) if isinstance(d, tuple) else f"{d}") + \
            (f" ({say(what[d], lang)})" if d in what else "")
    lines = [say("a shape mismatch: your function made {produced} where {expected} was needed", lang,
                 produced=named(produced), expected=named(expected))]
    code = " ".join(f.line or "" for f in _your_frames(e))
    hint = spec.get("shape_error", lambda *a, **k: None)(produced, expected, code, *inputs, **case)
    return lines + ([say(hint, lang)] if hint else [])


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


def _hint(t, yours, right, spec, inputs, dy, case, wrong_tensors, lang="en"):
    """A hint for the wrong gradient ``t``: a known mistake it equals, else a pattern it shows, else
    where it is, from which of the exercise's gradients are wrong (``wrong_tensors``)."""
    for tensor, wrong, hint in spec["wrong"](*inputs, dy, **case):
        if tensor == t and np.shape(wrong) == yours.shape and relative_error(yours, wrong) < TOL:
            return f"{t}: {say(hint, lang)}"
    if not np.all(np.isfinite(yours)):
        return say("{t} contains NaN or inf: a division by zero, or the square root of a negative number?", lang, t=t)
    if not np.any(yours):
        return say("{t} is all zeros: is it still a placeholder?", lang, t=t)
    if relative_error(yours, -right) < TOL:
        return say("{t} has the wrong sign", lang, t=t)
    k = float(np.sum(yours * right) / max(float(np.sum(right * right)), 1e-300))
    if k and relative_error(yours, k * right) < TOL:
        frac = say(" (about 1/{n})", lang, n=round(1 / k)) if abs(1 / k - round(1 / k)) < 1e-3 * abs(1 / k) else ""
        return say("{t} has the right pattern but is scaled by {k}{frac}: a stray or missing factor "
                   "(a mean where a sum belongs, a missing 1/M ...)", lang, t=t, k=f"{k:.4g}", frac=frac)
    pattern = spec.get("pattern", lambda *a, **k: None)(t, yours, right, *inputs, dy, **case)
    if pattern:
        return f"{t}: {say(pattern, lang)}"
    if wrong_tensors == {t} and t in spec.get("alone", {}):
        return f"{t}: {say(spec['alone'][t], lang)}"
    where = spec.get("where", lambda *a: None)(t, wrong_tensors)
    if where:
        return f"{t}: {say(where, lang)}"
    general = spec["general"].get(t, GENERAL)
    return f"{t}: " + say(general(case) if callable(general) else general, lang)


GENERAL = "compare your formula with the derivation, term by term"  # a gradient with no hint of its own


def _your_line(exc, lang="en"):
    """' (line N: code)' for the last frame of the traceback that is outside minires, if any."""
    frames = _your_frames(exc)
    if not frames:
        return ""
    f = frames[-1]
    return "\n  " + say("at line {n} of {fn}: {code}", lang, n=f.lineno, fn=f.name, code=(f.line or "").strip())


def check_relu(fn, verbose=True, lang=None):
    """Check ``relu_backward(x, dy) -> dx``."""
    return check("relu", fn, verbose, lang)


def check_linear(fn, verbose=True, lang=None):
    """Check ``linear_backward(x, W, b, dy) -> (dx, dW, db)`` for y = x @ W.T + b."""
    return check("linear", fn, verbose, lang)


def check_conv2d(fn, verbose=True, lang=None):
    """Check ``conv2d_backward(x, W, b, dy, stride=1, padding=0) -> (dx, dW, db)``."""
    return check("conv2d", fn, verbose, lang)


def check_batchnorm(fn, verbose=True, lang=None):
    """Check ``batchnorm_backward(x, gamma, beta, dy, eps=1e-5) -> (dx, dgamma, dbeta)`` (training mode)."""
    return check("batchnorm", fn, verbose, lang)


def check_basic_block(fn, verbose=True, lang=None):
    """Check ``basic_block_backward(x, W1, gamma1, beta1, W2, gamma2, beta2, dy) -> (dx, dW1, ..., dbeta2)``."""
    return check("basic_block", fn, verbose, lang)


def check_maxpool(fn, verbose=True, lang=None):
    """Check ``maxpool_backward(x, dy, kernel_size=2, stride=2, padding=0) -> dx`` (and its ties, by a rule)."""
    return check("maxpool", fn, verbose, lang)


def check_projection_block(fn, verbose=True, lang=None):
    """Check ``projection_block_backward(x, W1, gamma1, beta1, W2, gamma2, beta2, Ws, gammas, betas, dy)``."""
    return check("projection_block", fn, verbose, lang)


def check_grouped_conv2d(fn, verbose=True, lang=None):
    """Check ``grouped_conv2d_backward(x, W, dy, groups=4) -> (dx, dW)`` (3x3, stride 1, padding 1, no bias)."""
    return check("grouped_conv2d", fn, verbose, lang)


def summary(results, lang=None):
    """Print one line per ExerciseResult and how many pass; ``results``: a list, or a dict name -> result."""
    lang = language(lang)
    results = list(results.values()) if isinstance(results, dict) else list(results)
    for r in results:
        print(f"  {r.name:<16} {say(r.status, lang)}")
    print(say("{ok} of {n} exercises pass", lang, ok=sum(r.ok for r in results), n=len(results)))


__all__ = ["relu", "linear", "conv2d", "batchnorm", "basic_block", "maxpool", "projection_block", "check",
           "check_relu", "check_linear", "check_conv2d", "check_batchnorm", "check_basic_block", "check_maxpool",
           "check_projection_block", "check_grouped_conv2d", "grouped_conv2d", "summary", "ExerciseResult", "EXERCISES"]
