"""Every "open file X and find Y" in the docs and notebooks names code that exists.

The convention: a reference to code is written ``path/to/file.py:name`` (``name`` may be
dotted, ``Class.method``), e.g. `minires/nn/conv.py:conv_backward`. This test finds every such
reference in the markdown files, the notebook sources, the notebooks and the package's own
docstrings, and checks that the file exists and defines the name (a function, a class, a
method or a module-level assignment), by reading the file's syntax tree.
"""
import ast
import glob
import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = re.compile(r"\b((?:minires|tests|tools|benchmarks)/[\w/]+\.py):([A-Za-z_][\w.]*[\w])")
OPEN_AND_FIND = re.compile(r"\bopen\b[^\n]{0,80}?\.py\b[^\n]{0,60}?\b(find|the lines?|look (for|at))\b",
                           re.IGNORECASE)


def _texts():
    """(where, text) for every place a reader is sent into the code from."""
    files = (glob.glob(os.path.join(ROOT, "*.md")) + glob.glob(os.path.join(ROOT, "*", "README.md"))
             + glob.glob(os.path.join(ROOT, "tools", "notebooks", "*.py"))
             + glob.glob(os.path.join(ROOT, "minires", "**", "*.py"), recursive=True))
    for path in sorted(files):
        yield os.path.relpath(path, ROOT), open(path, encoding="utf-8").read()
    for path in sorted(glob.glob(os.path.join(ROOT, "tutorials", "*.ipynb"))):
        cells = json.load(open(path, encoding="utf-8"))["cells"]
        yield os.path.relpath(path, ROOT), "\n".join("".join(c["source"]) for c in cells)


def _defined_names(path):
    """Every top-level function, class and assignment, and every Class.method, in a Python file."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names.update(f"{node.name}.{item.name}" for item in node.body
                             if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    names.add(target.id)
    return names


REFERENCES = sorted({(where, m.group(1), m.group(2)) for where, text in _texts() for m in REFERENCE.finditer(text)})


def test_the_docs_do_send_readers_into_the_code():
    """The test below checks something: the README and the layer files use the convention."""
    assert len(REFERENCES) >= 10
    assert any(f == "minires/nn/conv.py" and n == "conv_backward" for _, f, n in REFERENCES)


@pytest.mark.parametrize("where,file,name", REFERENCES, ids=[f"{w}->{f}:{n}" for w, f, n in REFERENCES])
def test_every_code_reference_resolves(where, file, name):
    path = os.path.join(ROOT, file)
    assert os.path.isfile(path), f"{where} refers to {file}, which does not exist"
    assert name in _defined_names(path), f"{where} refers to {file}:{name}, which {file} does not define"


@pytest.mark.parametrize("where,text", list(_texts()), ids=lambda v: v if len(v) < 80 else "")
def test_open_and_find_uses_the_convention(where, text):
    """A sentence that says "open X.py ... find ..." must name what to find as file.py:name."""
    for m in OPEN_AND_FIND.finditer(text):
        line = text[text.rfind("\n", 0, m.start()) + 1:text.find("\n", m.end())]
        assert REFERENCE.search(line), f"{where}: '{line.strip()}' names no file.py:name reference"
