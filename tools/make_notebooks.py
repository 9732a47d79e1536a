"""Build the tutorial notebooks (tutorials/*.ipynb) from their sources, tools/notebooks/*.py.

A source is a Python file in the "percent" format that Jupytext, VS Code and Spyder read:

    # %% [markdown]      starts a markdown cell; each of its lines loses its leading '# '
    # %%                 starts a code cell

Text before the first marker is a note for maintainers and is not copied. A marker may end
with ``only=exercises`` or ``only=solutions``. A source named ``*_exercises.py`` gives two
notebooks: ``NAME.ipynb``, where each block between ``# BEGIN SOLUTION`` and ``# END SOLUTION``
becomes a placeholder raising NotImplementedError, and ``NAME_solutions.ipynb``, with the blocks
(the marker lines removed). Other sources give one notebook with the same name.

Notebooks are written stripped (no outputs, no execution counts) with fixed cell ids, so that
building twice gives the same bytes and a diff shows only what a person changed.

    python tools/make_notebooks.py            # write every notebook
    python tools/make_notebooks.py --check    # exit 1 if a notebook in tutorials/ differs from its source
"""
import argparse
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "tools" / "notebooks"
TUTORIALS = ROOT / "tutorials"
MARKER = re.compile(r"^# %%( \[markdown\])?( only=(exercises|solutions))?\s*$")
METADATA = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}}


def parse(text):
    """Source text -> [(kind 'markdown'|'code', only None|'exercises'|'solutions', [lines])]."""
    cells = []
    for line in text.splitlines():
        m = MARKER.match(line)
        if m:
            cells.append(("markdown" if m.group(1) else "code", m.group(3), []))
        elif cells:
            kind, _, lines = cells[-1]
            if kind == "markdown":
                if line and not line.startswith("#"):
                    raise ValueError(f"markdown line does not start with '#': {line!r}")
                line = line[2:] if line.startswith("# ") else line[1:]
            lines.append(line)
    return cells


def placeholder(lines):
    """Replace each SOLUTION block with '# YOUR CODE HERE' and a NotImplementedError naming the function."""
    out, inside, fn = [], False, "this exercise"
    for line in lines:
        m = re.match(r"\s*def (\w+)\(", line)
        if m:
            fn = m.group(1)
        if line.strip() == "# BEGIN SOLUTION":
            inside, indent = True, line[:len(line) - len(line.lstrip())]
            out += [f"{indent}# YOUR CODE HERE",
                    f'{indent}raise NotImplementedError("{fn}: not written yet")']
        elif line.strip() == "# END SOLUTION":
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("a '# BEGIN SOLUTION' has no '# END SOLUTION'")
    return out


def solution(lines):
    return [line for line in lines if line.strip() not in ("# BEGIN SOLUTION", "# END SOLUTION")]


def notebook(cells, variant=None):
    """Parsed cells -> a stripped nbformat-4.5 notebook (a dict); variant: None, 'exercises', 'solutions'."""
    nb_cells = []
    for kind, only, lines in cells:
        if only and only != variant:
            continue
        if kind == "code" and variant:
            lines = placeholder(lines) if variant == "exercises" else solution(lines)
        while lines and not lines[0].strip():
            lines = lines[1:]
        while lines and not lines[-1].strip():
            lines = lines[:-1]
        source = [line + "\n" for line in lines[:-1]] + lines[-1:]
        cell = {"cell_type": kind, "id": f"c{len(nb_cells):02d}", "metadata": {}, "source": source}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        nb_cells.append(cell)
    return {"cells": nb_cells, "metadata": METADATA, "nbformat": 4, "nbformat_minor": 5}


def dumps(nb):
    """The bytes Jupyter itself would write (nbformat's JSON layout)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def build_all():
    """{notebook path: JSON text} for every source."""
    out = {}
    for src in sorted(SOURCES.glob("[0-9]*.py")):
        cells = parse(src.read_text(encoding="utf-8"))
        if src.stem.endswith("_exercises"):
            out[TUTORIALS / f"{src.stem}.ipynb"] = dumps(notebook(cells, "exercises"))
            out[TUTORIALS / f"{src.stem}_solutions.ipynb"] = dumps(notebook(cells, "solutions"))
        else:
            out[TUTORIALS / f"{src.stem}.ipynb"] = dumps(notebook(cells))
    return out


def write_atomic(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing; exit 1 on a difference")
    args = parser.parse_args(argv)
    stale = []
    for path, text in build_all().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.name)
        else:
            write_atomic(path, text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("out of date with tools/notebooks/ (run python tools/make_notebooks.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
