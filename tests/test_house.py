"""The house: which file may import which, and how big a file or a function may grow.

The rules (README.md, "The house"; CONTRIBUTING.md):
- no import circles between files, counting imports inside functions too;
- nn/ (the textbook) imports only minires.backend and nn/ itself; engine/ (the fast path) only
  nn/, backend and engine/ itself; nothing imports the command line (cli/);
- the packages form floors, each importing only from the floors below it;
- an import inside a function, of minires's own modules, only in cli/ (where it keeps
  ``minires --help`` quick), never to dodge a circle;
- no file in minires/ over 400 lines, no function over 60.
"""
import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "minires")

# Each package's floor: a package imports only from lower floors (and from itself).
FLOORS = {"backend": 0, "files": 0, "nn": 1, "engine": 2, "weights": 2, "data": 2, "viz": 3, "parallel": 3, "models": 3,
          "keras": 4, "zoo": 5, "train": 6, "predict": 6, "explain": 6, "teach": 7, "cli": 8, "__main__": 9}
MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 60


def modules():
    """{dotted module name: path} of every file of the package."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                parts = ["minires"] + os.path.relpath(path, ROOT)[:-3].split(os.sep)
                found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imports(name, path):
    """[(imported module, line, inside a function?)] of one file: relative imports resolved, and
    ``from package import submodule`` counted as an import of the submodule."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
    in_function = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for t in targets:
            if t in MODULES:
                found.append((t, node.lineno, id(node) in in_function))
    return found


GRAPH = {name: imports(name, path) for name, path in MODULES.items()}


def package_of(name):
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "minires"


def rel(name):
    return os.path.relpath(MODULES[name], os.path.dirname(ROOT))


def test_no_import_circles_between_files():
    edges = {a: sorted({b for b, _, _ in GRAPH[a] if b != a}) for a in GRAPH}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import circle: " + " -> ".join(rel(m) for m in cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_nn_is_the_textbook_and_engine_sits_beneath_it():
    allowed = {"nn": {"nn", "backend"}, "engine": {"engine", "nn", "backend"}}
    wrong = [f"{rel(a)}:{line} imports {b}" for a, found in GRAPH.items() for b, line, _ in found
             if package_of(a) in allowed and package_of(b) not in allowed[package_of(a)]]
    assert not wrong, wrong


def test_each_floor_imports_only_from_the_floors_below():
    assert set(FLOORS) | {"minires"} >= {package_of(m) for m in MODULES}, "a new package needs a floor here"
    wrong = [f"{rel(a)}:{line} imports {b}" for a, found in GRAPH.items() for b, line, _ in found
             if package_of(a) != "minires" and package_of(b) not in (package_of(a), "minires")
             and FLOORS[package_of(b)] >= FLOORS[package_of(a)]]
    assert not wrong, wrong


def test_nothing_imports_the_command_line():
    wrong = [rel(a) for a, found in GRAPH.items() for b, _, _ in found
             if package_of(b) == "cli" and package_of(a) != "cli" and a != "minires.__main__"]
    assert not wrong, wrong


def test_imports_inside_functions_only_in_the_command_line():
    wrong = [f"{rel(a)}:{line} imports {b} inside a function" for a, found in GRAPH.items()
             for b, line, inside in found if inside and package_of(a) != "cli"]
    assert not wrong, wrong


def test_no_file_over_400_lines_and_no_function_over_60():
    long_files, long_functions = [], []
    for name, path in MODULES.items():
        text = open(path, encoding="utf-8").read()
        if text.count("\n") > MAX_FILE_LINES:
            long_files.append(f"{rel(name)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{rel(name)}:{node.lineno} {node.name}: {n} lines")
    assert not long_files and not long_functions, long_files + long_functions
