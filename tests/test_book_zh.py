"""The Chinese edition's foundation (issue 30): its catalogs complete and consistent with the
glossary, and its figures drawn with a CJK font or not at all.

- every learner-facing catalog (docs/_ext/languages.py: LEARNER_FACING) has no untranslated and no
  fuzzy entry: a new English paragraph cannot ship without its translation;
- every translated paragraph of every zh_CN catalog uses the glossary's Chinese term wherever its
  English names the term (docs/_ext/glossary.py: TERMS), and the glossary page lists every term;
- the Chinese figures draw with the CJK font and raise, instead of drawing boxes, without it.

The catalogs are read and each translation judged by docs/_ext/catalogs.py (the standard library
only), which a translator runs on the files they touched.
"""
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CATALOGS = DOCS / "locales" / "zh_CN" / "LC_MESSAGES"
sys.path.insert(0, str(DOCS / "_ext"))

import catalogs as po  # noqa: E402
import glossary  # noqa: E402
import languages  # noqa: E402

read_po = po.read_po


def catalogs():
    return sorted(CATALOGS.rglob("*.po"))


def docname(path):
    return path.relative_to(CATALOGS).with_suffix("").as_posix()


def test_the_po_reader():
    text = '#, fuzzy\nmsgid ""\nmsgstr ""\n"Language: zh_CN\\n"\n\n#, fuzzy\nmsgid "a "\n"b"\nmsgstr "甲"\n\nmsgid "c"\nmsgstr ""\n'
    path = Path(__file__).parent / "_tmp_reader.po"
    try:
        path.write_text(text, encoding="utf-8")
        assert read_po(path) == [("a b", "甲", frozenset({"fuzzy"})), ("c", "", frozenset())]
    finally:
        path.unlink()


def test_the_catalogs_are_there():
    names = {docname(p) for p in catalogs()}
    assert names >= set(languages.LEARNER_FACING), sorted(set(languages.LEARNER_FACING) - names)


def learner_facing(page):
    """The entries of ``page``'s catalog a learner reads: all of them, but on an API page only the
    page's own text (its title and introduction), not the docstrings it pulls in, which stay
    English (what ``help()`` shows in every language)."""
    entries = read_po(CATALOGS / f"{page}.po")
    if not page.startswith("api/"):
        return entries
    source = " ".join((DOCS / f"{page}.md").read_text(encoding="utf-8").split())
    return [e for e in entries if " ".join(e[0].split()) in source]


@pytest.mark.parametrize("page", languages.LEARNER_FACING)
def test_learner_facing_catalogs_are_complete(page):
    entries = learner_facing(page)
    assert entries
    wrong = [(msgid[:60], found) for msgid, msgstr, flags in entries if (found := po.problems(msgid, msgstr, flags))]
    assert not wrong, f"{page}.po: {len(wrong)} entries to fix (python docs/_ext/catalogs.py FILE.po), first {wrong[:3]}"


def test_every_translation_keeps_its_markup_and_uses_the_glossarys_terms():
    wrong = []
    for path in catalogs():
        for msgid, msgstr, flags in read_po(path):
            if msgstr and "fuzzy" not in flags:
                wrong += [f"{docname(path)}: {msgid[:60]!r}: {p}" for p in po.problems(msgid, msgstr, flags)]
    assert not wrong, "\n".join(wrong[:30])


def test_every_page_of_the_book_is_learner_facing_or_api():
    pages = {p.relative_to(DOCS).with_suffix("").as_posix() for p in DOCS.rglob("*.md")
             if not any(part.startswith(("_", ".")) or part in ("chapters", "locales") for part in p.relative_to(DOCS).parts)
             and "solutions" not in p.parts}
    pages |= {f"chapters/{p.stem}" for p in (ROOT / "tutorials").glob("*.ipynb")} | {"chapters/README"}
    assert pages <= set(languages.LEARNER_FACING), sorted(pages - set(languages.LEARNER_FACING))


def test_the_checker_finds_what_a_translator_can_break():
    assert po.problems("Use `conv2d` here.", "这里用 conv2d。") == ["markup changed: missing ['`conv2d`']"]
    assert po.problems("See [the path](learning-path.md).", "见[路线](path.md)。")[0].startswith("markup changed")
    assert po.problems("with $x$ twice", "两次用到 $y$")[0].startswith("markup changed")
    assert po.problems("The shortcut adds.", "The shortcut adds.") == ["the English copied, not translated"]
    assert po.problems("a paragraph", "") == ["untranslated"]
    assert po.problems(r"\text{out} = F(x) + x", r"\text{out} = F(x) + x") == []      # a display equation
    assert po.problems("See [the path](learning-path.md).", "见[学习路线](learning-path.md)。") == []
    assert po.problems("Batch norm, then ReLU.", "先 BN，再 ReLU。") == []                # the tutorial's BN


def test_the_term_check_sees_words_not_code():
    assert glossary.missing_terms("the shortcut adds", "相加") == [("shortcut", "捷径分支")]
    assert glossary.missing_terms("the `shortcut` attribute", "属性 `shortcut`") == []
    assert glossary.missing_terms("a projection shortcut", "虚线捷径分支") == []
    assert glossary.missing_terms("Batch norm layers", "归一化层") == [("Batch norm", "批量归一化")]
    assert glossary.missing_terms("Batch norm layers", "BN 层") == []       # the tutorial's abbreviation
    assert glossary.missing_terms("shortcuts2", "x") == []


def test_the_glossary_page_lists_every_term():
    page = (DOCS / "glossary.md").read_text(encoding="utf-8")
    for forms, zh, _ in glossary.TERMS:
        assert f"| {forms[0]} | {zh} |" in page, forms[0]
    zh = {t[1] for t in glossary.TERMS}
    for word in ("残差结构", "捷径分支", "虚线残差结构", "实线残差结构", "步距", "特征矩阵", "主分支", "下采样"):
        assert word in zh        # the tutorial's own words


# ----- the figures

matplotlib = pytest.importorskip("matplotlib")
figures = pytest.importorskip("figures")


@pytest.fixture(scope="module")
def font():
    found = figures.cjk_font()
    if found is None:
        pytest.skip("no CJK font installed (Debian: fonts-noto-cjk)")
    return found


def test_every_translated_figure_label_is_one_the_figure_has():
    from minires.teach.diagrams import LABELS
    for language, figs in figures.TRANSLATED.items():
        for name, labels in figs.items():
            assert set(labels) <= set(LABELS[name]), (language, name, set(labels) - set(LABELS[name]))
            assert re.search(r"[\u4e00-\u9fff]", labels["title"]), (name, "the title is not Chinese")


def test_every_figure_has_its_chinese_with_the_same_placeholders():
    import string
    from minires.teach.diagrams import LABELS
    zh = figures.TRANSLATED["zh_CN"]
    assert set(zh) == set(LABELS), sorted(set(LABELS) ^ set(zh))

    def fields(text):
        return sorted((name, spec) for _, name, spec, _ in string.Formatter().parse(text) if name is not None)

    for name, english in LABELS.items():
        assert set(zh[name]) == set(english), (name, set(english) ^ set(zh[name]))
        for key, text in english.items():
            assert fields(zh[name][key]) == fields(text), (name, key)


def test_resnet34_in_chinese_draws_with_the_cjk_font(tmp_path, font):
    (path,) = figures.draw_translated(tmp_path, "zh_CN", ["resnet34"], font=font)
    assert path.name == "resnet34.zh_CN.png" and path.stat().st_size > 10_000


def test_resnet34_in_chinese_without_the_font_raises_not_boxes(tmp_path, font):
    with pytest.raises(UserWarning, match="Glyph .* missing"):
        figures.draw_translated(tmp_path, "zh_CN", ["resnet34"], font=None)     # DejaVu Sans alone: Latin only
    assert not (tmp_path / "resnet34.zh_CN.png").exists()


# ----- the chapters as Chinese notebooks (docs/_ext/notebooks_zh.py)

def test_every_piece_of_every_chinese_notebook_is_translated_and_the_code_is_the_same(tmp_path):
    pytest.importorskip("myst_parser", reason="the book's Markdown parser comes with the [docs] extra")
    import json
    import notebooks_zh
    md = notebooks_zh.parser()
    written = notebooks_zh.write_notebooks("zh_CN", tmp_path)
    assert len(written) == len(list((ROOT / "tutorials").glob("*.ipynb")))
    wrong = []
    for path in written:
        zh = json.loads(path.read_text(encoding="utf-8"))
        en = json.loads((ROOT / "tutorials" / path.name).read_text(encoding="utf-8"))
        assert ([c["source"] for c in zh["cells"] if c["cell_type"] == "code" and not c["id"].endswith("-lang")]
                == [c["source"] for c in en["cells"] if c["cell_type"] == "code"]), path.name
        translations = set(notebooks_zh.read_catalog("zh_CN", f"chapters/{path.stem}").values())
        for cell in zh["cells"]:
            if cell["cell_type"] == "markdown":
                wrong += [(path.name, content[:60]) for _, _, content in notebooks_zh.pieces(md, "".join(cell["source"]))
                          if notebooks_zh.message(content) not in translations]
    assert not wrong, wrong[:10]


def test_a_translated_cell_keeps_its_markdown():
    pytest.importorskip("myst_parser", reason="the book's Markdown parser comes with the [docs] extra")
    import notebooks_zh
    catalog = {"1. The block": "1\\. 残差结构", "the shortcut adds `x`, and the main path": "捷径分支加上 `x`，主分支",
               "a": "甲", "b c": "乙丙"}
    source = "# 1. The block\n\n- the shortcut adds `x`,\n  and the main path\n- untranslated\n\n| a | b c |\n|---|---|\n"
    assert notebooks_zh.translate_cell(notebooks_zh.parser(), source, catalog) == (
        "# 1\\. 残差结构\n\n- 捷径分支加上 `x`，主分支\n- untranslated\n\n| 甲 | 乙丙 |\n|---|---|\n")


def test_the_chinese_exercise_notebook_checks_in_chinese(tmp_path):
    """From the Chinese notebook to a checked exercise without English: the solutions notebook,
    translated, run by Jupyter; its checks report in Chinese."""
    nbclient = pytest.importorskip("nbclient", reason="running a notebook needs nbclient (the [docs] extra)")
    pytest.importorskip("myst_parser", reason="the book's Markdown parser comes with the [docs] extra")
    import json
    import os
    import nbformat
    import notebooks_zh
    (path,) = notebooks_zh.write_notebooks("zh_CN", tmp_path, [ROOT / "tutorials" / "07_gradcheck_exercises_solutions.ipynb"])
    nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    env = {k: v for k, v in os.environ.items() if k != "MINIRES_LANG"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        nbclient.NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "通过" in printed and "PASS" not in printed, printed[:2000]
    assert json.loads(path.read_text(encoding="utf-8"))["metadata"]["minires_language"] == "zh_CN"
