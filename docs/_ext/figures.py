"""Sphinx extension: draw every figure of the book from the code, at build time.

The figures are :data:`minires.teach.diagrams.FIGURES` (the ResNet diagrams from the models
themselves, im2col from the real im2col, the schedules from the real optimizer ...), written to
``docs/_generated/figures/NAME.png`` before Sphinx reads a page, so a page's
``![...](/_generated/figures/NAME.png)`` always shows what the code does now. ``tools/make_figures.py``
writes the same files outside a build.

Another language (``-D language=zh_CN``): the figures whose texts are translated in ``TRANSLATED``
are drawn again with them, into ``NAME.zh_CN.png``, which Sphinx shows in place of ``NAME.png``
(``figure_language_filename``'s default ``{root}.{language}{ext}``); the others stay English for
now. Chinese needs a CJK font: ``cjk_font()`` finds one (Noto Sans CJK, Debian's ``fonts-noto-cjk``)
and the figure is drawn with it as the fallback of DejaVu Sans, the book's font; a glyph that no
font has is an error (matplotlib's "Glyph ... missing" warning), never a box in a picture.
"""
import contextlib
import time
import warnings
from pathlib import Path

from sphinx.util import logging


logger = logging.getLogger(__name__)

# {language: {figure: its labels}} (minires.teach.diagrams.LABELS lists every figure's texts; a
# figure not here is shown in English). The terms are the glossary's (docs/_ext/glossary.py).
TRANSLATED = {
    "zh_CN": {
        "resnet34": {
            "title": "{model}：{blocks} 个残差结构，其中 {dashed} 个的捷径分支改变形状（虚线）；输入 {input}",
            "stem": "起始层", "head": "输出层", "input": "输入", "identity": "实线捷径分支",
            "projection": "虚线捷径分支（1x1 卷积，形状改变）",
            "zero-pad": "补零捷径分支（选项 A，形状改变）",
            "sum": "(+)：主分支 + 捷径分支，然后 ReLU",
        },
        "basic_block": {
            "title": "基本残差结构（{model} 的 {identity} 与 {projection}）：两个 3x3 卷积和一条捷径分支",
            "input": "输入", "output": "输出", "identity": "实线捷径分支",
            "projection": "虚线捷径分支（形状改变）", "zero-pad": "补零捷径分支", "sum": "相加",
        },
        "degradation": {
            "title": "{data} 上的退化问题：{steps} 步，批大小 {batch}；普通网络与残差网络的训练误差",
            "plain": "普通网络", "resnet": "残差网络", "plain_net": "普通网络-{depth}", "resnet_net": "ResNet-{depth}",
            "xlabel": "迭代次数", "ylabel": "训练误差（%），各小批量的滑动平均",
        },
    },
}

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


def setup(app):
    app.connect("builder-inited", draw_figures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
