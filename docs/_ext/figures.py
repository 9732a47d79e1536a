"""Sphinx extension: draw every figure of the book from the code, at build time.

The figures are :data:`minires.teach.diagrams.FIGURES` (the ResNet diagrams from the models
themselves, im2col from the real im2col, the schedules from the real optimizer ...), written to
``docs/_generated/figures/NAME.png`` before Sphinx reads a page, so a page's
``![...](/_generated/figures/NAME.png)`` always shows what the code does now. ``tools/make_figures.py``
writes the same files outside a build.
"""
import time
from pathlib import Path

from sphinx.util import logging


logger = logging.getLogger(__name__)


def draw_figures(app):
    from minires.teach.diagrams import FIGURES
    out = Path(app.srcdir) / "_generated" / "figures"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for name, draw in FIGURES.items():
        draw(path=str(out / f"{name}.png"))
    logger.info(f"[figures] drew {len(FIGURES)} figures from the code in {time.perf_counter() - t0:.1f} s")


def setup(app):
    app.connect("builder-inited", draw_figures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
