"""The chapters as notebooks in another language (issue 30): each tutorial notebook with its
Markdown cells translated from the book's own catalogs, its code cells exactly as they are.

A Chinese reader runs the exercises in a notebook, not in the book: this writes that notebook.
In the Chinese book it is what each chapter's download button gives (``_sources/chapters/``,
written when the build finishes); outside a build::

    python docs/_ext/notebooks_zh.py zh_CN OUT        # OUT/01_convolution_as_matmul.ipynb ...

How a cell is translated: Sphinx's catalog entry for a paragraph, heading, list item or table cell
is the Markdown source of its text, lines joined by spaces (``extract_messages``); the cell is
parsed with the book's own MyST parser, and each such piece of source is replaced by its
translation, keeping what is around it (``# ``, ``- ``, ``1. ``, a table's ``|``). Display math,
code and everything without a catalog entry stays. A notebook that runs the exercise checker gets
one more code cell after its imports, ``os.environ["MINIRES_LANG"] = "zh"``, so the checker's
reports and hints are Chinese too. ``tests/test_book_zh.py`` checks that every piece of every
translated notebook is a translation and that the code cells are the English notebook's.
"""
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import catalogs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = ROOT / "docs" / "locales"
CHECKER = "import minires.teach.exercises as ex"
HINTS_IN = {"zh_CN": ["import os\n",
                      'os.environ["MINIRES_LANG"] = "zh"   # 练习检查器的报告和提示用中文（删掉这一行：英文）']}


def parser():
    """The book's Markdown parser (conf.py's MyST extensions), for finding a cell's pieces."""
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser
    return create_md_parser(MdParserConfig(enable_extensions={"dollarmath", "amsmath", "colon_fence", "deflist"}),
                            RendererHTML)


def message(content):
    """The catalog's msgid of a piece whose source is ``content`` (as Sphinx's extract_messages)."""
    return content.replace("\n", " ").strip()


def pieces(md, source):
    """[(first line, last line + 1, content)] of each translatable piece of Markdown ``source``."""
    return [(tok.map[0], tok.map[1], tok.content) for tok in md.parse(source) if tok.type == "inline" and tok.map]


def translate_cell(md, source, catalog):
    """``source`` (a Markdown cell) with each piece that has a translation in ``catalog`` replaced."""
    lines = source.split("\n")
    for first, end, content in sorted(pieces(md, source), key=lambda p: -p[0]):     # bottom up: lines stay put
        zh = catalog.get(message(content))
        if not zh:
            continue
        zh = zh.replace("\n", " ") if "\n" not in content else zh
        head = content.split("\n")[0]
        if end - first == 1 and lines[first].lstrip().startswith("|"):       # a table cell: its cell only
            cells = lines[first].split("|")
            lines[first] = "|".join(c.replace(content, zh, 1) if c.strip() == content else c for c in cells)
            continue
        at = lines[first].find(head)
        if at < 0:                                                           # not where it was parsed: leave it
            continue
        tail = lines[end - 1][lines[end - 1].find(content.split("\n")[-1]) + len(content.split("\n")[-1]):] \
            if end - first > 1 else lines[first][at + len(head):]
        lines[first:end] = [lines[first][:at] + zh + tail]
    return "\n".join(lines)


def read_catalog(language, page):
    path = CATALOGS / language / "LC_MESSAGES" / f"{page}.po"
    if not path.exists():
        return {}
    return {msgid: msgstr for msgid, msgstr, flags in catalogs.read_po(path) if msgstr and "fuzzy" not in flags}


def to_source(text):
    """A notebook's source list: the lines with their newlines, as Jupyter writes them."""
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def translate_notebook(path, language, md=None):
    """The notebook at ``path`` (a dict, as json) with its Markdown cells in ``language``."""
    md = md or parser()
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    catalog = read_catalog(language, f"chapters/{Path(path).stem}")
    out = copy.deepcopy(nb)
    cells = []
    for cell in out["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = to_source(translate_cell(md, "".join(cell["source"]), catalog))
        cells.append(cell)
        if cell["cell_type"] == "code" and CHECKER in "".join(cell["source"]) and language in HINTS_IN:
            cells.append({"cell_type": "code", "execution_count": None, "id": f"{cell.get('id', 'cell')}-lang",
                          "metadata": {}, "outputs": [], "source": HINTS_IN[language]})
    out["cells"] = cells
    out["metadata"]["minires_language"] = language
    return out


def write_notebooks(language, out, notebooks=None):
    """Write every tutorial notebook (or ``notebooks``) translated into ``out``; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md, written = parser(), []
    for path in notebooks or sorted((ROOT / "tutorials").glob("*.ipynb")):
        target = out / Path(path).name
        tmp = target.with_suffix(".ipynb.tmp")
        tmp.write_text(json.dumps(translate_notebook(path, language, md), ensure_ascii=False, indent=1) + "\n",
                       encoding="utf-8")
        tmp.replace(target)
        written.append(target)
    return written


def on_finished(app, exception):
    """In a translated build, the chapters' download button gives the translated notebooks."""
    language = app.config.language or "en"
    if exception is None and language != "en" and (CATALOGS / language).is_dir():
        sources = Path(app.outdir) / "_sources" / "chapters"
        if sources.is_dir():
            write_notebooks(language, sources, [ROOT / "tutorials" / p.name for p in sources.glob("*.ipynb")
                                                if (ROOT / "tutorials" / p.name).exists()])


def setup(app):
    app.connect("build-finished", on_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python docs/_ext/notebooks_zh.py LANGUAGE OUT   (LANGUAGE: zh_CN)")
    for written in write_notebooks(sys.argv[1], sys.argv[2]):
        print(written)
