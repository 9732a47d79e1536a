r"""The Chinese edition's catalogs, read and checked (issue 30): what tests/test_book_zh.py asserts,
and what a translator runs on the files they touched::

    python docs/_ext/catalogs.py docs/locales/zh_CN/LC_MESSAGES/chapters/05_residual_block.po

A translation (msgstr) must

- exist and not be fuzzy;
- keep its English's markup (msgid) exactly: every inline code span, every piece of inline math,
  every link target and every MyST role, the same number of times (the text of a link is translated,
  where it points is not) -- a dropped backtick would turn code into prose, a changed target would
  break a link;
- use the glossary's Chinese term wherever its English names one (docs/_ext/glossary.py);
- not be the English copied, except where nothing in it is English prose (a display equation, a
  glossary term's English name);
- not begin like a list item (``1. `` ``- ``), which Markdown would make of a translated heading
  ("1. 把卷积写成矩阵乘法" is a list, and Sphinx then keeps the English title): write ``1\. ``.

The reader handles what Sphinx and sphinx-intl write (comments, ``#,`` flags, multi-line strings),
not plurals or contexts (which they do not write); the standard library only.
"""
import ast
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import glossary  # noqa: E402


def read_po(path):
    """[(msgid, msgstr, flags)] of a .po file, the header (msgid "") left out."""
    entries, flags, field, current = [], set(), None, {}

    def close():
        if "msgid" in current and current["msgid"]:
            entries.append((current["msgid"], current.get("msgstr", ""), frozenset(flags)))

    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines() + [""], 1):
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
            current[field] = _string(path, number, value)
        elif line.startswith('"') and field:
            current[field] += _string(path, number, line)
        else:
            raise ValueError(f"{path}, line {number}: cannot read {line!r} (expected msgid, msgstr, a "
                             "quoted string, a comment or a blank line)")
    return entries


def _string(path, number, text):
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        value = None
    if not isinstance(value, str):
        raise ValueError(f"{path}, line {number}: {text!r} is not one double-quoted string (a quote "
                         'inside a translation is written \\", a newline \\n)')
    return value


# What a translation keeps exactly: code, math, link targets, roles, URLs.
MARKUP = re.compile(r"\{[\w:-]+\}`[^`]*`"          # a MyST role: {ref}`genindex`
                    r"|``.+?``|`[^`]+`"             # inline code
                    r"|\$\$.+?\$\$|\$[^$]+\$"       # inline math
                    r"|\]\([^)\s]*\)"               # a link's target: ](url)
                    r"|https?://[^\s)>]+", re.S)    # a bare URL


LIST_ITEM = re.compile(r"\d+[.)] |[-*+] ")


def markup(text):
    return Counter(m.group(0) for m in MARKUP.finditer(text))


def is_math(msgid):
    """Whether ``msgid`` is a display equation (no English prose outside its LaTeX commands)."""
    if not re.search(r"\\[A-Za-z]+", msgid):
        return False
    rest = re.sub(r"\\(text|mathrm|operatorname|mathbf|mathit|begin|end)\{[^}]*\}|\\[A-Za-z]+", " ", msgid)
    return not re.search(r"[A-Za-z]{3,}", rest)


ENGLISH_FORMS = {form.lower() for forms, _, _ in glossary.TERMS for form in forms}


def kept_in_english_on_purpose(msgid, msgstr):
    """A msgstr equal to its msgid: allowed for a display equation, a glossary term's English name
    and text with no English word outside code, math and link targets."""
    return msgstr == msgid and (is_math(msgid) or msgid.lower() in ENGLISH_FORMS
                                or not re.search(r"[A-Za-z]{2}", glossary.prose(msgid).replace("{ref}", "")))


def problems(msgid, msgstr, flags=frozenset()):
    """What is wrong with one entry's translation, as sentences ([] when nothing is)."""
    if not msgstr.strip():
        return ["untranslated"]
    found = ["fuzzy (a changed English paragraph: check the translation, then remove '#, fuzzy')"] \
        if "fuzzy" in flags else []
    if msgstr == msgid:
        if not kept_in_english_on_purpose(msgid, msgstr):
            found.append("the English copied, not translated")
        return found
    if LIST_ITEM.match(msgstr):
        found.append(f"begins like a list item, {LIST_ITEM.match(msgstr).group(0)!r}: Markdown would read a list, "
                     "not the title or paragraph it translates (write 1\\. for 1.)")
    want, got = markup(msgid), markup(msgstr)
    if want != got:
        missing, extra = sorted((want - got).elements()), sorted((got - want).elements())
        found.append("markup changed:" + (f" missing {missing}" if missing else "")
                     + (f" extra {extra}" if extra else ""))
    found += [f"{english!r} is {zh!r} in the glossary, not in the translation"
              for english, zh in glossary.missing_terms(msgid, msgstr)]
    return found


def check(path):
    """[(msgid, [problems])] for the entries of the catalog at ``path`` that have any."""
    return [(msgid, p) for msgid, msgstr, flags in read_po(path) if (p := problems(msgid, msgstr, flags))]


def main(paths):
    bad = 0
    for path in paths:
        for msgid, found in check(path):
            bad += 1
            print(f"{path}: {msgid[:70]!r}\n    " + "\n    ".join(found))
    print(f"{len(paths)} catalog(s), {bad} entr{'y' if bad == 1 else 'ies'} to fix")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python docs/_ext/catalogs.py FILE.po [FILE.po ...]")
    sys.exit(main(sys.argv[1:]))
