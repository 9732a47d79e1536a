"""pytest settings for the notebooks (``python -m pytest --nbmake tutorials``).

Every notebook gets the ``notebooks`` marker, so ``python -m pytest -m "not notebooks"`` runs
the rest of the suite without them (they take most of its time).

nbmake runs each notebook in a fresh Jupyter kernel, started in this folder. The kernel
inherits this process's environment, so putting the repository root on PYTHONPATH lets the
notebooks ``import minires`` from this checkout even where it is not pip-installed.
"""
import os
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parent.parent)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection looks at the marks
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebooks)
