"""The tutorial notebooks as stored: built from their sources, stripped, listed in the README.

Running them is `python -m pytest --nbmake tutorials` (needs nbmake and ipykernel); these
tests need neither: they check tools/make_notebooks.py and tools/strip_notebooks.py.
"""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "tutorials").glob("*.ipynb"))


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make, strip = load_tool("make_notebooks"), load_tool("strip_notebooks")


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    for n in ["01_convolution_as_matmul", "02_conv_backward", "03_batch_norm", "04_relu_pool",
              "05_residual_block", "06_building_resnet", "07_gradcheck_exercises", "07_gradcheck_exercises_solutions",
              "08_training_digits", "09_degradation", "10_gpu", "11_published_weights",
              "12_data_parallel", "13_bottlenecks_and_groups", "14_keras_flavour"]:
        assert f"{n}.ipynb" in names


def test_notebooks_are_built_from_their_sources(capsys):
    built = make.build_all()
    assert set(built) == set(NOTEBOOKS)
    assert make.main(["--check"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped_and_valid(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert strip.is_stripped(nb)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["cells"][0]["cell_type"] == "markdown" and nb["cells"][0]["source"][0].startswith("# ")
    nbformat = pytest.importorskip("nbformat")
    nbformat.validate(nbformat.reads(path.read_text(encoding="utf-8"), as_version=4))


def test_the_degradation_results_quoted_by_notebook_9_are_there():
    import json
    folder = ROOT / "tutorials" / "results" / "degradation-digits"
    saved = json.loads((folder / "degradation.json").read_text(encoding="utf-8"))
    assert saved["experiment"] == "degradation" and saved["config"]["depths"] == [20, 32, 44, 56]
    assert (folder / "degradation.png").read_bytes()[:4] == b"\x89PNG"
    source = (ROOT / "tools" / "notebooks" / "09_degradation.py").read_text(encoding="utf-8")
    assert "results/degradation-digits/degradation.png" in source


def test_every_notebook_is_in_the_readme():
    readme = (ROOT / "tutorials" / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert path.name in readme


def test_strip_removes_outputs_and_machine_metadata():
    nb = {"cells": [{"cell_type": "code", "id": "a", "execution_count": 3, "metadata": {"scrolled": True},
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": "hi"}], "source": "1"}],
          "metadata": {"kernelspec": {"name": "python3"}, "widgets": {}}, "nbformat": 4, "nbformat_minor": 5}
    assert not strip.is_stripped(nb)
    clean = strip.strip(nb)
    assert strip.is_stripped(clean) and nb["cells"][0]["outputs"]  # the original is left alone
    cell = clean["cells"][0]
    assert cell["outputs"] == [] and cell["execution_count"] is None and cell["metadata"] == {}
    assert clean["metadata"] == strip.METADATA


def test_strip_in_place_and_check(tmp_path, capsys):
    path = tmp_path / "dirty.ipynb"
    nb = make.notebook(make.parse("# %%\nprint(1)\n"))
    nb["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    path.write_text(json.dumps(nb))
    assert strip.main(["--check", str(path)]) == 1
    assert strip.main([str(path)]) == 0
    assert strip.main(["--check", str(path)]) == 0 and strip.is_stripped(json.loads(path.read_text()))


SOURCE = '''# a note for maintainers, not copied
# %% [markdown]
# # Title
#
# Some $x^2$.

# %%
def f(x):
    """doc"""
    # BEGIN SOLUTION
    return x * 2
    # END SOLUTION

# %% only=solutions
assert f(1) == 2

# %% [markdown] only=exercises
# Your turn.
'''


def test_parse_and_the_two_variants():
    cells = make.parse(SOURCE)
    assert [(k, o) for k, o, _ in cells] == [("markdown", None), ("code", None), ("code", "solutions"),
                                             ("markdown", "exercises")]
    ex = make.notebook(cells, "exercises")
    so = make.notebook(cells, "solutions")
    text = lambda nb: ["".join(c["source"]) for c in nb["cells"]]  # noqa: E731
    assert text(ex) == ["# Title\n\nSome $x^2$.",
                        'def f(x):\n    """doc"""\n    # YOUR CODE HERE\n'
                        '    raise NotImplementedError("f: not written yet")', "Your turn."]
    assert text(so) == ["# Title\n\nSome $x^2$.", 'def f(x):\n    """doc"""\n    return x * 2', "assert f(1) == 2"]
    assert [c["id"] for c in so["cells"]] == ["c00", "c01", "c02"]
    assert make.dumps(so) == make.dumps(make.notebook(make.parse(SOURCE), "solutions"))  # repeatable bytes


def test_parse_rejects_bad_sources():
    with pytest.raises(ValueError, match="does not start with '#'"):
        make.parse("# %% [markdown]\nnot a comment\n")
    with pytest.raises(ValueError, match="no '# END SOLUTION'"):
        make.notebook(make.parse("# %%\n# BEGIN SOLUTION\nx = 1\n"), "exercises")
