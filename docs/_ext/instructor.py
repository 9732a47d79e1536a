"""Sphinx extension: the instructor edition's solution pages, written from the checker itself.

With ``-t instructor`` (``tags.has('instructor')``), before Sphinx reads a page, one page per
exercise is written to ``docs/instructor/solutions/NAME.md``: the solution (the code between
BEGIN and END SOLUTION in ``tools/notebooks/07_gradcheck_exercises.py``, the source of both
notebooks), every wrong answer the checker recognises with the hint it prints for it (computed by
the exercise's spec, ``minires.teach.exercises.EXERCISES[NAME]['wrong']``), and the hints it
gives when a gradient is wrong in no known way. Nothing is typed twice: a new wrong answer in a
spec is on its page at the next build. The student edition writes nothing and excludes
``instructor/`` (conf.py).
"""
import re
from pathlib import Path

import numpy as np

from minires.teach.exercises import EXERCISES
from minires.teach.hints_zh import translate

SOURCE = Path(__file__).resolve().parents[2] / "tools" / "notebooks" / "07_gradcheck_exercises.py"


def solution_code(name, source=SOURCE):
    """The solution of exercise ``name``: its ``NAME_backward`` function (and any helper in its cell),
    the BEGIN/END SOLUTION markers removed."""
    cells = re.split(r"^# %%.*$", source.read_text(encoding="utf-8"), flags=re.M)
    cell = next((c for c in cells if re.search(rf"^def {name}_backward\(", c, flags=re.M)), None)
    if cell is None:
        raise ValueError(f"{source}: no cell defines {name}_backward")
    lines = [ln for ln in cell.strip("\n").splitlines() if ln.strip() not in ("# BEGIN SOLUTION", "# END SOLUTION")]
    return "\n".join(lines)


def recognised(name):
    """[(gradient, hint)] for every wrong answer the checker recognises in exercise ``name``, on each of
    its cases (duplicates once)."""
    spec, seen = EXERCISES[name], []
    for case in spec["cases"]:
        rng = np.random.default_rng(12)
        inputs = spec["inputs"](rng)
        dy = rng.standard_normal(np.shape(spec["forward"](*inputs, **case)))
        for t, _, hint in spec["wrong"](*inputs, dy, **case):
            if (t, hint) not in seen:
                seen.append((t, hint))
    return seen


def _general(spec):
    hints = []
    for key in ("alone", "general"):
        for t, hint in (spec.get(key) or {}).items():
            text = hint(spec["cases"][0]) if callable(hint) else hint
            hints.append((t, text, key))
    return hints


# The pages' own words, {language: {English: that language}} (the hints are the checker's).
WORDS = {"zh": {
    "Exercise {number}: `{name}`": "练习 {number}：`{name}`",
    "The gradients asked for: {grads}": "要求的梯度：{grads}",
    "; checked on the cases {cases}": "；检查的情形：{cases}",
    "The solution": "参考答案",
    "Wrong answers the checker recognises": "检查器能认出的错误答案",
    "Each is computed by the exercise's spec; an answer equal to one of them gets its hint:":
        "每一个都由该练习的 spec 算出；与其中之一相等的答案会得到对应的提示：",
    "- (none: every wrong answer gets the general hints)": "- （没有：每个错误答案都得到一般性的提示）",
    "What the hints say otherwise": "其他情况下的提示",
    "When a gradient is wrong in no known way (`general`), or is the only one wrong (`alone`):":
        "当一个梯度的错误不属于任何已知情形（`general`），或者它是唯一出错的梯度（`alone`）时：",
    "- (no further hints)": "- （没有更多提示）",
}}


def page(number, name, lang="en"):
    """The MyST page of exercise ``name`` (the ``number``-th in the notebook), in ``lang`` ('en', 'zh')."""
    def say(text, **fields):
        return WORDS.get(lang, {}).get(text, text).format(**fields)

    def hint(text):
        return translate(text) if lang == "zh" else text

    spec = EXERCISES[name]
    cases = [", ".join(f"`{k}={v}`" for k, v in c.items()) for c in spec["cases"] if c]
    grads = ", ".join(f"`{g}`" for g in spec["grads"])
    cases = say("; checked on the cases {cases}", cases="; ".join(cases)) if cases else ""
    lines = ["# " + say("Exercise {number}: `{name}`", number=number, name=name), "",
             say("The gradients asked for: {grads}", grads=grads) + cases + ("。" if lang == "zh" else "."), "",
             "## " + say("The solution"), "", "```python", solution_code(name), "```", "",
             "## " + say("Wrong answers the checker recognises"), "",
             say("Each is computed by the exercise's spec; an answer equal to one of them gets its hint:"), ""]
    known = recognised(name)
    lines += [f"- `{t}`: {hint(h)}" for t, h in known] or [say("- (none: every wrong answer gets the general hints)")]
    lines += ["", "## " + say("What the hints say otherwise"), "",
              say("When a gradient is wrong in no known way (`general`), or is the only one wrong (`alone`):"), ""]
    lines += [f"- `{t}` ({key}): {hint(text)}" for t, text, key in _general(spec)] or [say("- (no further hints)")]
    return "\n".join(lines) + "\n"


def write_solutions(app):
    if not app.tags.has("instructor"):
        return
    out = Path(app.srcdir) / "instructor" / "solutions"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.md"):
        old.unlink()
    lang = "zh" if (app.config.language or "en").startswith("zh") else "en"
    for number, name in enumerate(EXERCISES, 1):
        (out / f"{number:02d}_{name}.md").write_text(page(number, name, lang), encoding="utf-8")


def setup(app):
    app.connect("builder-inited", write_solutions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
