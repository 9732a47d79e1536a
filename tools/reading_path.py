"""The reading path: which files and functions of minires a forward + backward steps through.

    python tools/reading_path.py            # ResNet-50 on the plain path, as in README.md's map
    python tools/reading_path.py --fast     # the same on the fast path (the engine)

A student who steps into ``model(x)`` and ``model.backward(g)`` with a debugger meets these
functions, in this order (each listed once, where it is first entered; comprehensions left
out). ``tests/test_paths.py`` checks the budget (plain path: at most 40 functions, no layout or
speed helper) and that README.md shows this script's output.
"""
import argparse
import contextlib
import os
import sys

import numpy as np

LAYOUT_AND_SPEED_FILES = {"engine/memory.py", "parallel/threads.py", "parallel/blas.py"}   # the fast path's workspaces, memory layout, threads


def reading_path(model_name, input_shape, plain_path=True):
    """[(file relative to minires/, qualified function name)] in the order first entered."""
    import minires
    from minires import nn, zoo
    root = os.path.dirname(os.path.abspath(minires.__file__))
    nn.manual_seed(0)
    model = zoo.get_model(model_name)
    x = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)
    seen = {}

    def profile(frame, event, arg):
        code = frame.f_code
        if event == "call" and code.co_filename.startswith(root) and not code.co_name.startswith("<"):
            key = (os.path.relpath(code.co_filename, root).replace(os.sep, "/"), code.co_qualname)
            seen.setdefault(key, len(seen))

    with nn.plain() if plain_path else contextlib.nullcontext():
        sys.setprofile(profile)
        try:
            y = model(x)
            model.backward(np.ones_like(y))
        finally:
            sys.setprofile(None)
    return sorted(seen, key=seen.get)


def render(model_name, input_shape, plain_path=True):
    """The path as text: one line per file, in the order first entered, with its functions."""
    path = reading_path(model_name, input_shape, plain_path)
    files = list(dict.fromkeys(f for f, _ in path))
    lines = [f"{model_name}{tuple(input_shape)}, forward + backward, {'plain' if plain_path else 'fast'} path: "
             f"{len(path)} functions in {len(files)} files"]
    for f in files:
        line = f"  {f:<18}"
        for i, name in enumerate(q for g, q in path if g == f):
            if i and len(line) + len(name) > 96:
                lines.append(line + ",")
                line = " " * 20
            elif i:
                line += ", "
            line += name
        lines.append(line)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # this checkout's minires
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--input", type=int, nargs=4, default=[2, 3, 64, 64], metavar=("N", "C", "H", "W"))
    ap.add_argument("--fast", action="store_true", help="trace the fast path instead of the plain one")
    a = ap.parse_args()
    print(render(a.model, tuple(a.input), plain_path=not a.fast))
