"""Sphinx extension: minires's docstrings, written to be read in an editor, shown as written.

The docstrings are plain text for ``help()`` and for students reading the source: aligned
columns of arguments, shapes under a line, formulas with ``|x|``. reStructuredText reads some
of that as markup (an indented line is a block quote, ``|n|`` a substitution). Before autodoc
renders a docstring (``autodoc-process-docstring``), each paragraph whose lines are indented
unevenly -- a table, a derivation -- becomes a literal block, shown exactly as written, and a
``|`` outside code is escaped. Lists, doctests and ``::`` blocks are left to reStructuredText.
"""
import re

LIST_ITEM = re.compile(r"^\s*([-*+]|\d+\.|\(\w\))\s")
CODE = re.compile(r"(``.*?``)")


def _indent(line):
    return len(line) - len(line.lstrip())


def _paragraphs(lines):
    para = []
    for line in lines:
        if line.strip():
            para.append(line)
        else:
            if para:
                yield para
                para = []
            yield None
    if para:
        yield para


def _uneven(para):
    """Whether a paragraph's later lines are indented past its first (and it is not a list or a doctest)."""
    first = _indent(para[0])
    if LIST_ITEM.match(para[0]) or para[0].lstrip().startswith(">>>") or para[0].rstrip().endswith("::"):
        return False
    items = [i for i, line in enumerate(para) if LIST_ITEM.match(line)]
    return any(_indent(line) > first for line in para[1:]) and not items


def _escape_bars(line):
    return "".join(part if part.startswith("``") else part.replace("|", "\\|") for part in CODE.split(line))


def plain(lines):
    """The docstring's lines with uneven paragraphs as literal blocks and bars escaped."""
    out, literal_until = [], None
    for para in _paragraphs(lines):
        if para is None:
            out.append("")
            continue
        base = _indent(para[0])
        if literal_until is not None and base > literal_until:      # the body of a '::' block
            out += para
            continue
        literal_until = None
        if _uneven(para):
            out += [" " * base + "::", ""] + ["    " + line for line in para]
            continue
        out += [_escape_bars(line) for line in para]
        if para[-1].rstrip().endswith("::"):
            literal_until = _indent(para[-1])
    return out


def process(app, what, name, obj, options, lines):
    lines[:] = plain(lines)


def setup(app):
    app.connect("autodoc-process-docstring", process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
