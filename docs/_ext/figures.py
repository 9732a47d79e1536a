"""Sphinx extension: draw every figure of the book from the code, at build time.

The figures are :data:`minires.teach.diagrams.FIGURES` (the ResNet diagrams from the models
themselves, im2col from the real im2col, the schedules from the real optimizer ...), written to
``docs/_generated/figures/NAME.png`` before Sphinx reads a page, so a page's
``![...](/_generated/figures/NAME.png)`` always shows what the code does now. ``tools/make_figures.py``
writes the same files outside a build.

Another language (``-D language=zh_CN``): the figures whose texts are translated in ``TRANSLATED``
are drawn again with them, into ``NAME.zh_CN.png``, which Sphinx shows in place of ``NAME.png``
(``figure_language_filename``'s default ``{root}.{language}{ext}``). A chapter that draws a
figure in a cell (``diagrams.draw_resnet34();``, a call with no arguments: the same picture as
``NAME.png``) shows it as a computed output, English; in a language with the figure's texts, the
cell's output image is pointed at ``NAME.png`` before Sphinx collects the images
(``translate_cell_figures``), so Sphinx shows ``NAME.LANGUAGE.png`` there too. The cell's code is
not changed. Chinese needs a CJK font: ``cjk_font()`` finds one (Noto Sans CJK, Debian's ``fonts-noto-cjk``)
and the figure is drawn with it as the fallback of DejaVu Sans, the book's font; a glyph that no
font has is an error (matplotlib's "Glyph ... missing" warning), never a box in a picture.
"""
import contextlib
import re
import time
import warnings
from pathlib import Path

from sphinx.util import logging

import figure_labels_zh


logger = logging.getLogger(__name__)

# {language: {figure: its labels}} (minires.teach.diagrams.LABELS lists every figure's texts; a
# figure not here is shown in English). The Chinese are in figure_labels_zh.py.
TRANSLATED = {"zh_CN": figure_labels_zh.ZH_CN}

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK KR",
                "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei")
GLYPH_MISSING = r".*Glyph.*missing.*"


def cjk_font():
    """The family name of an installed CJK font matplotlib can use, or None. matplotlib's font
    cache may predate the font's installation: the system's font files are then looked through
    (a file named *CJK*, *WenQuanYi*, *SourceHan*) and added."""
    from matplotlib import font_manager

    def known():
        installed = {f.name for f in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FAMILIES if name in installed), None)

    if known() is None:
        for path in font_manager.findSystemFonts(fontext="otf") + font_manager.findSystemFonts(fontext="ttf"):
            if any(k in Path(path).name for k in ("SansCJK", "wqy", "SourceHanSans")):
                with contextlib.suppress(Exception):
                    font_manager.fontManager.addfont(path)
    return known()


@contextlib.contextmanager
def drawing_in(language, font="auto"):
    """matplotlib set up for ``language``: for Chinese, DejaVu Sans with ``font`` (a CJK family;
    "auto": ``cjk_font()``) as its fallback; in any language a missing glyph raises (UserWarning
    turned into an error). ``font=None``: no CJK font (what a machine without one draws)."""
    import matplotlib
    if font == "auto":
        font = cjk_font() if language.startswith("zh") else None
        if language.startswith("zh") and font is None:
            raise RuntimeError("no CJK font for the Chinese figures: install fonts-noto-cjk (Debian) or "
                               "another of " + ", ".join(CJK_FAMILIES))
    families = ["DejaVu Sans"] + ([font] if font else [])
    with warnings.catch_warnings(), matplotlib.rc_context({"font.family": families}):
        warnings.filterwarnings("error", message=GLYPH_MISSING)
        yield


def draw_translated(out, language, names=None, font="auto"):
    """Draw the figures translated into ``language`` (all of ``TRANSLATED[language]``, or ``names``)
    into ``out/NAME.LANGUAGE.png``; returns the paths."""
    from minires.teach.diagrams import FIGURES
    wanted = TRANSLATED.get(language, {})
    paths = []
    with drawing_in(language, font):
        for name in names or wanted:
            path = Path(out) / f"{name}.{language}.png"
            FIGURES[name](path=str(path), labels=wanted[name])
            paths.append(path)
    return paths


def draw_figures(app):
    from minires.teach.diagrams import FIGURES
    out = Path(app.srcdir) / "_generated" / "figures"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for name, draw in FIGURES.items():
        draw(path=str(out / f"{name}.png"))
    logger.info(f"[figures] drew {len(FIGURES)} figures from the code in {time.perf_counter() - t0:.1f} s")
    language = app.config.language or "en"
    if language in TRANSLATED:
        paths = draw_translated(out, language)
        logger.info(f"[figures] and {len(paths)} of them in {language}")


CELL = re.compile(r"(?:\w+\.)?draw_(\w+)\(\)\s*;?")     # the one statement of a cell that draws a figure
IGNORED = re.compile(r"\s*(#.*|(from\s+\S+\s+)?import\s.*)?")  # imports, comments and blank lines around it


def figure_cells(doctree):
    """[(figure name, [image nodes of its output])] for each notebook cell of ``doctree`` whose code is
    one call of a figure's ``draw_NAME()`` with no arguments (and imports, comments)."""
    from docutils import nodes
    from minires.teach.diagrams import FIGURES
    by_function = {draw.__name__[len("draw_"):]: name for name, draw in FIGURES.items()}
    found = []
    for cell in doctree.findall(nodes.container):
        if cell.get("nb_element") != "cell_code":
            continue
        code = [n.astext() for n in cell.findall(nodes.literal_block)][:1]
        lines = [line.strip() for line in "\n".join(code).splitlines() if not IGNORED.fullmatch(line)]
        m = CELL.fullmatch(lines[0]) if len(lines) == 1 else None
        if m and m.group(1) in by_function:
            found.append((by_function[m.group(1)], list(cell.findall(nodes.image))))
    return found


def translate_cell_figures(app, doctree):
    """In a language with translated figures, point each figure cell's output image(s) at the
    figure drawn at build time, whose translation Sphinx then shows (runs before the image
    collector: ``doctree-read`` at priority 400)."""
    translated = TRANSLATED.get(app.config.language or "en")
    if not translated:                                  # English: the cells' own outputs, nothing to do
        return
    for name, images in figure_cells(doctree):
        if name in translated:
            for image in images:
                image["uri"] = f"/_generated/figures/{name}.png"


def setup(app):
    app.connect("builder-inited", draw_figures)
    app.connect("doctree-read", translate_cell_figures, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
