"""The exercise checker in Chinese (issue 30): MINIRES_LANG=zh or lang="zh" says every report line and
every hint in Chinese, from minires/teach/hints_zh.py's catalog; every hint a spec can give has its
translation there (this file fails otherwise), and English stays as it was."""
import re

import numpy as np
import pytest

import minires.teach.exercises as ex
from minires.nn import im2col
from minires.teach import exercises_blocks, exercises_layers
from minires.teach.hints_zh import ZH, known, language, say

CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = re.compile(r"\b(the|is|are|your|not|where|with|from|must|only|and|of|check)\b")  # prose, not code


def _recognised(name):
    """[(gradient, hint)] of every wrong answer the spec computes, over its cases (as docs/_ext/instructor.py)."""
    spec, seen = ex.EXERCISES[name], []
    for case in spec["cases"]:
        rng = np.random.default_rng(12)
        inputs = spec["inputs"](rng)
        dy = rng.standard_normal(np.shape(spec["forward"](*inputs, **case)))
        seen += [(t, hint) for t, _, hint in spec["wrong"](*inputs, dy, **case) if (t, hint) not in seen]
    return seen


def _fixed_hints(name):
    """The spec's alone and general hints, a callable general one over every case."""
    spec, out = ex.EXERCISES[name], []
    for key in ("alone", "general"):
        for hint in (spec.get(key) or {}).values():
            out += [hint(case) for case in spec["cases"]] if callable(hint) else [hint]
    return out


@pytest.mark.parametrize("name", list(ex.EXERCISES))
def test_every_hint_a_spec_can_give_has_a_translation(name):
    hints = [h for _, h in _recognised(name)] + _fixed_hints(name)
    missing = [h for h in hints if not known(h)]
    assert not missing, f"{name}: no Chinese in minires/teach/hints_zh.py for {missing}"
    for h in hints:
        assert CJK.search(say(h, "zh")), h


def test_the_computed_hints_have_translations():
    """Hints formatted from values (shape hints, patterns, the projection block's shape error, maxpool's rule)."""
    hints = [ex._shape_hint(g, w) for g, w in [((3, 2), (2, 3)), ((2, 4, 3), (2, 3, 4)), ((6,), (2, 3)), ((5,), (2,))]]
    hints.append(ex.GENERAL)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    for produced, expected, code in [(72, 18, "W1"), ((6, 6), (3, 3), "Ws")]:
        hints.append(exercises_blocks._projection_shape_error(produced, expected, code, x))
    spec = ex.EXERCISES["batchnorm"]
    xb, gamma, beta = spec["inputs"](np.random.default_rng(12))
    dy = np.random.default_rng(1).standard_normal(xb.shape)
    right = spec["reference"](xb, gamma, beta, dy)
    M = xb.size // xb.shape[1]
    hints.append(exercises_layers._bn_pattern("dgamma", right["dgamma"] * np.sqrt((M - 1) / M), right["dgamma"],
                                              xb, gamma, beta, dy))
    for t in ("dW1", "dgamma1"):
        hints.append(exercises_blocks._block_where(t, {t}))
    assert all(hints) and not [h for h in hints if not known(h)], [h for h in hints if not known(h)]
    assert "步距" in say(hints[5], "zh") and "3x3" in say(hints[5], "zh") and "72" in say(hints[5], "zh")


def test_templates_keep_their_placeholders():
    for en, zh in ZH.items():
        assert set(re.findall(r"\{(\w+)\}", en)) == set(re.findall(r"\{(\w+)\}", zh)), en


def test_the_seeds_terms():
    words = " ".join(ZH.values())
    for term in ("主分支", "捷径分支", "虚线残差结构", "步距", "卷积核"):
        assert term in words, term
    assert "快捷" not in words and "跳跃连接" not in words  # one term for one idea: 捷径分支


def test_the_hints_use_the_books_glossary():
    """The same term for the same idea in the hints as in the book (docs/_ext/glossary.py, the check
    the book's catalogs pass)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs" / "_ext"))
    import glossary
    wrong = {english: found for english, zh in ZH.items() if (found := glossary.missing_terms(english, zh))}
    assert not wrong, wrong


# ----------------------------------------------------------------------------- whole reports
def _conv_overwriting_col2im(x, W, b, dy, stride=1, padding=0):
    """conv2d's backward with col2im assigning (=) where overlapping windows must add."""
    N, C, H, Wd = x.shape
    O, _, KH, KW = W.shape
    OH, OW = dy.shape[2:]
    X_col = im2col(x.transpose(1, 0, 2, 3), KH, KW, stride, stride, padding, padding).reshape(C * KH * KW, -1)
    dY = dy.transpose(1, 0, 2, 3).reshape(O, N * OH * OW)
    dcol = (W.reshape(O, -1).T @ dY).reshape(C, KH, KW, N, OH, OW)
    img = np.zeros((C, N, H + 2 * padding + stride - 1, Wd + 2 * padding + stride - 1))
    for i in range(KH):
        for j in range(KW):
            img[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride] = dcol[:, i, j]
    dx = img[:, :, padding:H + padding, padding:Wd + padding].transpose(1, 0, 2, 3)
    return dx, (dY @ X_col.T).reshape(W.shape), dy.sum(axis=(0, 2, 3))


def test_a_wrong_conv2d_in_chinese(capsys):
    r = ex.check_conv2d(_conv_overwriting_col2im, lang="zh")
    lines = r.report.splitlines()
    assert r.status == "fail" and r.tensor == "dx" and capsys.readouterr().out.strip() == r.report
    assert lines[0] == "_conv_overwriting_col2im（参数 stride=1, padding=1）：未通过", lines[0]
    assert lines[1].startswith("  dx       错误    （相对误差 ") and "容差 1e-06）" in lines[1], lines[1]
    assert lines[2].startswith("           相差最大的元素，你的值 vs 数值梯度：[")
    assert lines[3] == "           提示：dx: " + ZH["right where windows do not overlap, wrong where they do: col2im "
                                                "must ADD the contributions of overlapping windows (+=, not =)"]
    assert lines[4].startswith("  dW       正确    （相对误差 ") and lines[5].startswith("  db       正确")
    assert len(lines) == 6 and not ENGLISH.search(r.report.replace("_conv_overwriting_col2im", "")), r.report
    assert r.hints == [lines[3].split("提示：")[1]]


def test_english_is_unchanged(monkeypatch):
    monkeypatch.delenv("MINIRES_LANG", raising=False)
    r = ex.check_conv2d(_conv_overwriting_col2im, verbose=False, lang="en")
    lines = r.report.splitlines()
    assert lines[0] == "_conv_overwriting_col2im (with stride=1, padding=1): FAIL"
    assert lines[1].startswith("  dx       WRONG   (relative error ") and lines[1].endswith(", tolerance 1e-06)")
    assert lines[2].startswith("           worst entries, yours vs numerical: [")
    assert lines[3] == ("           hint: dx: right where windows do not overlap, wrong where they do: col2im must ADD "
                        "the contributions of overlapping windows (+=, not =)")
    assert lines[4].startswith("  dW       ok      (relative error ") and not CJK.search(r.report)
    assert ex.check_conv2d(_conv_overwriting_col2im, verbose=False).report == r.report
    ok = ex.check_relu(lambda x, dy: dy * (x > 0), verbose=False)
    assert ok.report.startswith("<lambda>: PASS (largest relative error ") and not CJK.search(ok.report)


def _pool_ties_to_each(x, dy, kernel_size=2, stride=2, padding=0):
    """Right without ties; with ties, each tied maximum gets the window's dy (the rule breaks)."""
    k, s, p = kernel_size, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    dxp = np.zeros_like(xp)
    for n, c, i, j in np.ndindex(dy.shape):
        win = xp[n, c, i * s:i * s + k, j * s:j * s + k]
        dxp[n, c, i * s:i * s + k, j * s:j * s + k] += dy[n, c, i, j] * (win == win.max())
    return dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]]


def _placeholder(x, dy):
    raise NotImplementedError


@pytest.mark.parametrize("name, fn, status", [
    ("relu", lambda x, dy: -dy * (x > 0), "fail"),                        # a generic hint
    ("relu", _placeholder, "not done"),
    ("relu", lambda x, dy: dy * (x > 0) + 1e-3 * (x > 0), "fail"),        # a pattern
    ("linear", lambda x, W, b, dy: (dy @ W, dy.T @ x), "fail"),            # the wrong number of arrays
    ("linear", lambda x, W, b, dy: (dy @ W, x.T @ dy, dy.sum(0)), "fail"),  # the wrong shape
    ("linear", lambda x, W, b, dy: (dy @ W, dy.T @ x, dy.sum(0) @ dy), "error"),  # a NumPy shape error
    ("maxpool", _pool_ties_to_each, "fail"),                              # a rule
])
def test_chinese_reports_say_no_english_prose(name, fn, status, monkeypatch):
    monkeypatch.setenv("MINIRES_LANG", "zh")
    r = ex.check(name, fn, verbose=False)
    assert r.status == status and CJK.search(r.report), r.report
    prose = re.sub(r"\w+Error[:：].*", "", r.report)  # NumPy's own message stays as NumPy wrote it
    prose = re.sub(r"位置：.*", "", prose)  # the learner's line of code
    assert not ENGLISH.search(prose), r.report
    assert all(CJK.search(h) for h in r.hints), r.hints


def test_the_language_is_validated(monkeypatch):
    monkeypatch.setenv("MINIRES_LANG", "fr")
    with pytest.raises(ValueError, match="MINIRES_LANG"):
        ex.check_relu(lambda x, dy: dy * (x > 0), verbose=False)
    assert ex.check_relu(lambda x, dy: dy * (x > 0), verbose=False, lang="en").ok  # the argument wins
    with pytest.raises(ValueError, match="lang"):
        ex.check_relu(lambda x, dy: dy * (x > 0), verbose=False, lang="cn")
    for value, lang in [("zh", "zh"), ("en", "en"), ("", "en"), (" zh ", "zh")]:
        monkeypatch.setenv("MINIRES_LANG", value)
        assert language() == lang
    monkeypatch.delenv("MINIRES_LANG")
    assert language() == "en" and language("zh") == "zh"


def test_summary_in_chinese(capsys):
    results = [ex.check_relu(lambda x, dy: dy * (x > 0), verbose=False), ex.check_relu(_placeholder, verbose=False)]
    ex.summary(results, lang="zh")
    out = capsys.readouterr().out
    assert "通过" in out and "未完成" in out and "2 道练习中通过了 1 道" in out, out
