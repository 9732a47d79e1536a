"""The Chinese edition's foundation (issue 30): its catalogs complete and consistent with the
glossary, and its figures drawn with a CJK font or not at all.

- every learner-facing catalog (docs/_ext/languages.py: LEARNER_FACING) has no untranslated and no
  fuzzy entry: a new English paragraph cannot ship without its translation;
- every translated paragraph of every zh_CN catalog uses the glossary's Chinese term wherever its
  English names the term (docs/_ext/glossary.py: TERMS), and the glossary page lists every term;
- the Chinese figures draw with the CJK font and raise, instead of drawing boxes, without it.

The catalogs are read by the small reader below (no dependency beyond the standard library).
"""
import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CATALOGS = DOCS / "locales" / "zh_CN" / "LC_MESSAGES"
sys.path.insert(0, str(DOCS / "_ext"))

import glossary  # noqa: E402
import languages  # noqa: E402


def read_po(path):
    """[(msgid, msgstr, flags)] of a .po file, the header (msgid "") left out. Handles what
    Sphinx and sphinx-intl write: comments, ``#,`` flags, multi-line strings; not plurals or
    contexts (which they do not write)."""
    entries, flags, field, current = [], set(), None, {}

    def close():
        if "msgid" in current and current["msgid"]:
            entries.append((current["msgid"], current.get("msgstr", ""), frozenset(flags)))

    for line in Path(path).read_text(encoding="utf-8").splitlines() + [""]:
        line = line.strip()
        if not line:
            close()
            flags, field, current = set(), None, {}
        elif line.startswith("#,"):
            flags |= {f.strip() for f in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith(("msgid ", "msgstr ")):
            field, _, value = line.partition(" ")
            current[field] = ast.literal_eval(value)
        elif line.startswith('"') and field:
            current[field] += ast.literal_eval(line)
        else:
            raise ValueError(f"{path}: cannot read the line {line!r}")
    return entries


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


@pytest.mark.parametrize("page", languages.LEARNER_FACING)
def test_learner_facing_catalogs_are_complete(page):
    entries = read_po(CATALOGS / f"{page}.po")
    assert entries
    untranslated = [i for i, s, _ in entries if not s.strip()]
    fuzzy = [i for i, _, f in entries if "fuzzy" in f]
    assert not untranslated, f"{page}.po: {len(untranslated)} untranslated, first {untranslated[:3]}"
    assert not fuzzy, f"{page}.po: {len(fuzzy)} fuzzy, first {fuzzy[:3]}"


ENGLISH_FORMS = {form.lower() for forms, _, _ in glossary.TERMS for form in forms}


def kept_in_english_on_purpose(msgid, msgstr):
    """A msgstr equal to its msgid: allowed for a glossary term's English name (the glossary's
    English column) and for text with no English word outside code, math and link targets."""
    return msgstr == msgid and (msgid.lower() in ENGLISH_FORMS or not re.search(r"[A-Za-z]{2}", glossary.prose(msgid)
                                                                            .replace("{ref}", "")))


def test_every_translation_uses_the_glossarys_terms():
    wrong = []
    for path in catalogs():
        for msgid, msgstr, flags in read_po(path):
            if not msgstr or "fuzzy" in flags or kept_in_english_on_purpose(msgid, msgstr):
                continue
            for english, zh in glossary.missing_terms(msgid, msgstr):
                wrong.append(f"{docname(path)}: {english!r} is {zh!r}, not in {msgstr[:80]!r}")
    assert not wrong, "\n".join(wrong)


def test_a_learner_facing_english_copy_is_not_a_translation():
    for page in languages.LEARNER_FACING:
        copied = [i for i, s, _ in read_po(CATALOGS / f"{page}.po")
                  if s == i and not kept_in_english_on_purpose(i, s)]
        assert not copied, f"{page}.po: the English copied, not translated: {copied[:3]}"


def test_the_term_check_sees_words_not_code():
    assert glossary.missing_terms("the shortcut adds", "相加") == [("shortcut", "捷径分支")]
    assert glossary.missing_terms("the `shortcut` attribute", "属性 `shortcut`") == []
    assert glossary.missing_terms("a projection shortcut", "虚线捷径分支") == []
    assert ("Batch norm", "批量归一化") in glossary.missing_terms("Batch norm layers", "BN 层")
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


def test_resnet34_in_chinese_draws_with_the_cjk_font(tmp_path, font):
    (path,) = figures.draw_translated(tmp_path, "zh_CN", ["resnet34"], font=font)
    assert path.name == "resnet34.zh_CN.png" and path.stat().st_size > 10_000


def test_resnet34_in_chinese_without_the_font_raises_not_boxes(tmp_path, font):
    with pytest.raises(UserWarning, match="Glyph .* missing"):
        figures.draw_translated(tmp_path, "zh_CN", ["resnet34"], font=None)     # DejaVu Sans alone: Latin only
    assert not (tmp_path / "resnet34.zh_CN.png").exists()
