"""Every code block in the docs runs, or says why not.

The documents: README.md, tutorials/README.md, benchmarks/README.md, tools/README.md (and
CONTRIBUTING.md when there is one). A block is a fenced block with a language; what the test
does with it depends on the language and on an HTML comment right above the fence (GitHub
does not show HTML comments):

    ```python   run alone in a fresh Python process (so ``import minires`` is a first import),
                with an empty temporary folder as the working directory
    ```bash     run with ``bash -e`` in an empty temporary folder; ``minires`` is this checkout's

    <!-- not run: REASON -->            not run; REASON (a few words at least) says why.
                                        A bash block is still checked without running it:
                                        every ``pip install`` names extras pyproject.toml has,
                                        every ``minires ...`` command parses with the CLI's own
                                        parser, every script and path it names exists.
    <!-- excerpt: PATH -->              not run: a piece of PATH, shown to be read; every line
                                        (comments and spacing aside) must be in that file
    <!-- run from the repository root --> a Python block that reads the repository's files
    <!-- run with: "OLD" -> "NEW": REASON -->  run with OLD replaced by NEW (OLD must be there),
                                        e.g. fewer epochs than the block shows; REASON says why

Files a block needs are made by the test, in the temporary folder, when the block names them
(``NEEDED_FILES``). Blocks without a language (the README's map of the repository) are text;
the map's paths are checked to exist.
"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [p for p in ("README.md", "tutorials/README.md", "benchmarks/README.md", "tools/README.md", "CONTRIBUTING.md")
        if (ROOT / p).exists()]
MARKER = re.compile(r"<!--\s*(not run|excerpt|run from the repository root|run with)\s*:?\s*(.*?)\s*-->", re.S)


def code_blocks(doc):
    """(doc, line number, language, marker kind, marker text, code) for every fenced block."""
    lines = (ROOT / doc).read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        above = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.fullmatch(above.strip())
        kind, text = (marker.group(1), marker.group(2)) if marker else (None, "")
        blocks.append((doc, i + 1, fence.group(1), kind, text, "\n".join(lines[i + 1:end]) + "\n"))
        i = end + 1
    return blocks


BLOCKS = [b for doc in DOCS for b in code_blocks(doc)]
CODE = [b for b in BLOCKS if b[2] in ("python", "bash")]


def block_id(block):
    return f"{block[0]}:{block[1]}"


def test_the_docs_have_code_blocks_and_every_language_is_handled():
    assert len(CODE) >= 10, [block_id(b) for b in CODE]
    for block in BLOCKS:
        assert block[2] in ("python", "bash", ""), f"{block_id(block)}: a ```{block[2]} block; run it or handle it here"


# ----------------------------------------------------------------------------- files the blocks need

def write_resnet50_pth(path):
    """A torch.save file (zip layout: archive/data.pkl, archive/data/<key>) of resnet50's state_dict:
    torchvision's names, shapes and order, each tensor in a storage of its own as in the published
    files (about 100 MB; tensors that share one storage would be refused by the reader's bound
    on how far a file may expand)."""
    from test_weights import dict_pickle, tensor_op, write_torch_zip

    from minires.models import resnet50
    state = resnet50().state_dict()
    tile = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
    entries, records = {}, {}
    for i, (name, value) in enumerate(state.items()):
        stride = [int(np.prod(value.shape[i + 1:])) for i in range(value.ndim)]
        if value.dtype == np.int64:
            entries[name] = tensor_op(str(i), 1, 0, value.shape, stride, stype="LongStorage")
            records[str(i)] = np.zeros(1, np.int64).tobytes()
        else:
            entries[name] = tensor_op(str(i), value.size, 0, value.shape, stride)
            records[str(i)] = np.resize(tile, value.size).tobytes()
    write_torch_zip(path, dict_pickle(entries), records, prefix="resnet50-0676ba61")


NEEDED_FILES = {"resnet50-0676ba61.pth": write_resnet50_pth}


def test_the_weights_file_made_for_the_readme_is_a_real_torch_file(tmp_path):
    from minires.models import resnet50
    from minires.weights import detect_format, load_weights
    path = tmp_path / "resnet50-0676ba61.pth"
    write_resnet50_pth(path)
    assert detect_format(path) == "torch-zip"
    state = load_weights(path)
    model = resnet50()
    model.load_state_dict(state, strict=True)
    assert list(state) == list(model.state_dict()) and state["fc.weight"].shape == (1000, 2048)
    np.testing.assert_array_equal(model.fc.weight.data.ravel()[:5], state["conv1.weight"].ravel()[:5])
    np.testing.assert_array_equal(model.fc.weight.data, state["fc.weight"])


# ----------------------------------------------------------------------------- running the blocks

def environment(tmp_path):
    """This checkout first on the import path, and a ``minires`` command that runs it."""
    shims = tmp_path.parent / (tmp_path.name + "-bin")
    shims.mkdir(exist_ok=True)
    for name, run in (("minires", "-m minires "), ("python", "")):
        (shims / name).write_text(f'#!/bin/sh\nexec "{sys.executable}" {run}"$@"\n')
        (shims / name).chmod(0o755)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                PATH=os.pathsep.join([str(shims), os.environ.get("PATH", "")]), MPLBACKEND="Agg")


def substitutions(text):
    """'"OLD" -> "NEW": reason' -> (OLD, NEW, reason)."""
    found = re.fullmatch(r'"(.+?)"\s*->\s*"(.*?)"\s*:\s*(.+)', text, re.S)
    assert found, f"a run-with marker reads '\"OLD\" -> \"NEW\": reason', got {text!r}"
    return found.groups()


def check_reason(block):
    assert len(block[4].split()) >= 3, \
        f"{block_id(block)}: say why the block is not run (a few words), got {block[4]!r}"


@pytest.mark.parametrize("block", CODE, ids=block_id)
def test_code_block(block, tmp_path):
    doc, line, language, kind, text, code = block
    if kind == "excerpt":
        check_excerpt(block)
        return
    if kind == "not run":
        check_reason(block)
        if language == "bash":
            dry_check_bash(block)
            return
        pytest.skip(f"{block_id(block)} not run: {text}")
    if kind == "run with":
        old, new, reason = substitutions(text)
        assert old in code, f"{block_id(block)}: the marker replaces {old!r}, which the block does not hold"
        assert len(reason.split()) >= 3, f"{block_id(block)}: say why the block is changed"
        code = code.replace(old, new)
    for name, make in NEEDED_FILES.items():
        if name in code:
            make(tmp_path / name)
    cwd = ROOT if kind == "run from the repository root" else tmp_path
    before = set(os.listdir(ROOT))
    command = [sys.executable, "-"] if language == "python" else ["bash", "-e", "-"]
    proc = subprocess.run(command, input=code, cwd=cwd, env=environment(tmp_path), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, \
        f"{block_id(block)} failed:\n{code}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert set(os.listdir(ROOT)) == before, f"{block_id(block)} left files in the repository"


# ----------------------------------------------------------------------------- excerpts

def _normalise(line):
    line = re.sub(r"\s+#.*$", "", line)            # a trailing comment
    return " ".join(line.split())


def check_excerpt(block):
    path = ROOT / block[4]
    assert path.is_file(), f"{block_id(block)}: an excerpt of {block[4]}, which does not exist"
    source = " ".join(_normalise(x) for x in path.read_text(encoding="utf-8").splitlines())
    source = " ".join(source.split())
    for line in block[5].splitlines():
        shown = _normalise(line)
        assert shown in source or not shown, f"{block_id(block)}: {line.strip()!r} is not in {block[4]}"


# ----------------------------------------------------------------------------- bash without running

def extras_in_pyproject():
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    with open(ROOT / "pyproject.toml", "rb") as f:
        return set(tomllib.load(f)["project"]["optional-dependencies"])


def dry_check_bash(block):
    from minires.cli import build_parser
    for line in block[5].splitlines():
        for command in re.split(r"&&|;", line.split(" #")[0]):
            words = shlex.split(command, comments=True)
            if not words:
                continue
            while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):   # VAR=value before a command
                words = words[1:]
            if words and words[0] in ("mpiexec", "mpirun", "srun") and "minires" in words:   # a launcher: what it runs
                words = words[words.index("minires"):]
            if not words:
                continue
            program, args = words[0], words[1:]
            where = f"{block_id(block)}: {command.strip()!r}"
            if program.endswith("pip") or program.endswith("pip3") or words[:3] == ["python", "-m", "pip"]:
                for arg in args:
                    extras = re.fullmatch(r"(?:\.|minires)\[([\w,-]+)\]", arg)
                    if extras:
                        missing = set(extras.group(1).split(",")) - extras_in_pyproject()
                        assert not missing, f"{where}: no extra {missing} in pyproject.toml"
            elif program == "minires":
                try:
                    build_parser().parse_args(args)
                except SystemExit as e:
                    pytest.fail(f"{where} does not parse (exit code {e.code})")
            elif program.endswith("python") or program.endswith("python3"):
                if args[:2] == ["-m", "venv"]:
                    continue
                if args[:2] == ["-m", "pytest"]:
                    paths = [a for a in args[2:] if not a.startswith("-") and "/" in a]
                elif args[:2] == ["-m", "sphinx"]:        # the book: its source folder must be there
                    values = {i + 1 for i, a in enumerate(args) if a in ("-b", "-D", "-t", "-d", "-c", "-j")}
                    sources = [a for i, a in enumerate(args) if i >= 2 and not a.startswith("-") and i not in values]
                    assert sources and (ROOT / sources[0] / "conf.py").exists(), f"{where}: no Sphinx source folder"
                    continue
                elif args[:2] == ["-m", "webbrowser"]:
                    continue
                else:
                    assert args and args[0].endswith(".py"), f"{where}: expected a script"
                    paths = [args[0]]
                for p in paths:
                    assert (ROOT / p).exists(), f"{where}: {p} does not exist"
            elif program in ("jupyter", "curl", "sha256sum"):
                continue
            else:
                pytest.fail(f"{where}: teach dry_check_bash what {program!r} is")


# ----------------------------------------------------------------------------- the README's map and import

def test_every_path_in_the_readmes_map_exists():
    maps = [b for b in BLOCKS if b[0] == "README.md" and b[2] == "" and b[5].startswith("minires/")]
    assert len(maps) == 1
    folder = None
    for line in maps[0][5].splitlines():
        if line.startswith("    "):                      # a description continued on the next line
            continue
        name = line.split()[0]
        if not line.startswith(" "):
            folder = name if name.endswith("/") else None
            path = name
        else:
            path = (folder or "") + name
        assert (ROOT / path).exists(), f"the README's map names {path}, which does not exist"


def test_import_minires_gives_its_submodules():
    code = ("import minires; print(minires.weights.load_weights.__name__, minires.models.resnet50.__name__, "
            "minires.train.fit.__name__)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["load_weights", "resnet50", "fit"], proc.stderr
