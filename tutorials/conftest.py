"""pytest settings for the notebooks (``python -m pytest --nbmake tutorials``).

nbmake runs each notebook in a fresh Jupyter kernel, started in this folder. The kernel
inherits this process's environment, so putting the repository root on PYTHONPATH lets the
notebooks ``import minires`` from this checkout even where it is not pip-installed.
"""
import os
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)
