"""The book (docs/): both editions build with -W, in English and in Chinese, every chapter executed,
checked as a reader sees it.

One build of each edition in each language for the whole module (the chapters execute once, into a
fresh jupyter-cache: the outputs are this checkout's, never a cache's from an older one; the
Chinese builds reuse them), then:
the student edition has the chapters with their outputs, the figures drawn from the code, an
API index naming every public layer, block and model, and no solutions; the instructor edition
adds a solutions page per exercise and the class notes; no local link or image of either is
broken; and headless Chromium opens the landing page and a chapter and finds their figures
loaded. The Chinese edition (issue 30): every page's prose is Chinese, the figures are the Chinese
ones, the solution pages speak Chinese, each page links to its twin, and a Chinese chapter
screenshotted in Chromium differs from the same page drawn without a CJK font (boxes cannot pass).
These tests are the notebooks' tests too (``-m "not notebooks"`` leaves them out).
"""
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
    pytest.importorskip(module, reason="the book needs the [docs] extra: pip install -e \".[docs]\"")

pytestmark = pytest.mark.notebooks
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def build(out, cache, *extra):
    """``python -m sphinx -W -b html docs OUT`` (the README's command), with the given cache."""
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", *extra, "-b", "html",
               "-D", f"nb_execution_cache_path={cache}", str(ROOT / "docs"), str(out)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return out


@pytest.fixture(scope="module")
def all_books(tmp_path_factory):
    """{(edition, language): the built site}; each edition's two languages side by side in
    EDITION/en and EDITION/zh_CN, as docs/_ext/languages.py expects (so the twin links are made)."""
    base = tmp_path_factory.mktemp("book")
    cache = base / "jupyter_cache"
    sites = {}
    for edition, tags in (("student", ()), ("instructor", ("-t", "instructor"))):
        sites[edition, "en"] = build(base / edition / "en", cache, *tags)
        sites[edition, "zh_CN"] = build(base / edition / "zh_CN", cache, *tags, "-D", "language=zh_CN")
    return sites


@pytest.fixture(scope="module")
def books(all_books):
    return all_books["student", "en"], all_books["instructor", "en"]


@pytest.fixture(scope="module")
def zh_books(all_books):
    return all_books["student", "zh_CN"], all_books["instructor", "zh_CN"]


def text_of(path):
    return Path(path).read_text(encoding="utf-8")


class Links(html.parser.HTMLParser):
    """Every href and src of a page."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.found.append((tag, value))


def broken_links(site):
    """(page, link) for every local link or image of ``site`` whose file is not there."""
    broken = []
    for page in Path(site).rglob("*.html"):
        if "_static" in page.relative_to(site).parts:     # the theme's templates, not pages
            continue
        parser = Links()
        parser.feed(text_of(page))
        for tag, link in parser.found:
            url = urlparse(link)
            if url.scheme or url.netloc or link.startswith(("#", "mailto:", "data:", "javascript:")):
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if not target.exists():
                broken.append((str(page.relative_to(site)), link))
    return broken


def test_the_student_edition_has_the_chapters_executed_and_no_solutions(books):
    student, _ = books
    chapters = sorted(p for p in (student / "chapters").glob("*.html") if p.stem != "README")
    executed = [p.stem for p in chapters if "cell_output" in text_of(p)]
    assert len(executed) >= 15, executed
    assert not (student / "instructor").exists()
    assert not list(student.rglob("*solutions*.html"))


def test_the_figures_are_drawn_from_the_code_and_shown_in_the_chapters(books):
    student, _ = books
    drawn = list((ROOT / "docs" / "_generated" / "figures").glob("*.png"))
    assert len(drawn) >= 20, drawn
    shown = {m for p in (student / "chapters").glob("*.html")
             for m in re.findall(r'<img[^>]+src="([^"]+\.png)"', text_of(p))}
    assert len(shown) >= 20, shown


def test_the_api_index_names_every_public_layer_block_and_model(books):
    student, _ = books
    index = text_of(student / "genindex.html")
    from minires import nn
    from minires.keras import KERAS_MODELS
    from minires.models import MODELS
    layers = [name for name in nn.__all__ if isinstance(getattr(nn, name), type)]
    wanted = layers + list(MODELS) + list(KERAS_MODELS) + ["BasicBlock", "Bottleneck", "DataLoader", "load_dataset",
                                                           "check_module", "check_function", "fit"]
    missing = [name for name in wanted if not re.search(rf">{re.escape(name)}(\(\))? \((class|in module)", index)]
    assert not missing, missing


def test_the_instructor_edition_has_a_solution_page_per_exercise_and_the_class_notes(books):
    _, instructor = books
    from minires.teach.exercises import EXERCISES
    pages = sorted((instructor / "instructor" / "solutions").glob("*.html"))
    assert [re.sub(r"^\d+_", "", p.stem) for p in pages] == list(EXERCISES)
    conv = re.sub(r"<[^>]+>", "", text_of(next(p for p in pages if p.stem.endswith("_conv2d"))))   # the text
    assert "def conv2d_backward" in conv and "col2im must ADD" in conv
    notes = text_of(instructor / "instructor" / "teaching.html")
    assert "08_training_digits" in notes                    # the timing table, measured by the build
    assert (instructor / "chapters" / "07_gradcheck_exercises_solutions.html").exists()


def test_no_local_link_or_image_is_broken(all_books):
    for site in all_books.values():
        assert not broken_links(site), (site, broken_links(site)[:20])


HARNESS = """<!doctype html><html><body><pre id="out">not loaded</pre>
<iframe id="page" src="{src}" width="1280" height="2000"></iframe>
<script>
document.getElementById("page").onload = function () {{
  var doc = this.contentDocument, images = Array.prototype.slice.call(doc.images);
  var broken = images.filter(function (i) {{ return !(i.complete && i.naturalWidth > 0); }});
  document.getElementById("out").textContent = JSON.stringify({{title: doc.title, images: images.length,
    broken: broken.map(function (i) {{ return i.src; }}), text: doc.body.innerText.length}});
}};
</script></body></html>"""


def open_in_chromium(page, tmp_path):
    """What headless Chromium finds in ``page`` once loaded: its title, its images and how many did
    not load, how much text it shows."""
    harness = tmp_path / "harness.html"
    harness.write_text(HARNESS.format(src=page.as_uri()), encoding="utf-8")
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                           "--virtual-time-budget=20000", "--dump-dom", harness.as_uri()],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="out">(.*?)</pre>', proc.stdout, re.S)
    assert found and found.group(1).startswith("{"), proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install -y chromium, as .ci/run does)")
@pytest.mark.parametrize("page", ["index.html", "chapters/06_building_resnet.html"])
def test_a_reader_sees_the_page_with_its_figures(books, page, tmp_path):
    student, _ = books
    seen = open_in_chromium(student / page, tmp_path)
    assert seen["images"] >= 1 and not seen["broken"], seen
    assert seen["text"] > 500 and "minires" in seen["title"], seen
    shot = tmp_path / "page.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600",
                    f"--screenshot={shot}", (student / page).as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000        # a page drawn, not a blank one
    if os.environ.get("MINIRES_BOOK_SHOTS"):                      # to look at them: a folder to copy them to
        shutil.copy(shot, Path(os.environ["MINIRES_BOOK_SHOTS"]) / page.replace("/", "_").replace(".html", ".png"))


# ----- the Chinese edition (issue 30)

CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_PROSE = re.compile(r"[A-Za-z]+(?:[\s,;]+[A-Za-z']+){4}")      # five English words in a row
ENGLISH_TITLE = re.compile(r"[A-Za-z]+(?:[\s,;:]+[A-Za-z']+){2}")     # three, in a heading


class Prose(html.parser.HTMLParser):
    """The text of each paragraph, heading, list item, table cell and caption of a page's article,
    without code, cell outputs, math and scripts (which stay as they are in every language)."""

    BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "dt", "figcaption", "caption"}
    SKIPPED = {"code", "pre", "script", "style", "kbd", "math", "svg"}
    VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "col", "area", "base", "source"}

    def __init__(self):
        super().__init__()
        self.blocks, self.current, self.stack, self.in_article = [], None, [], False

    def skipping(self):
        return any(tag in self.SKIPPED or "cell_output" in cls or "math" in cls.split() for tag, cls in self.stack)

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        cls = dict(attrs).get("class") or ""
        if tag == "article":
            self.in_article = True
        self.stack.append((tag, cls))
        if tag in self.BLOCKS and self.in_article and not self.skipping():
            self.current = []

    def handle_endtag(self, tag):
        while self.stack:
            top, _ = self.stack.pop()
            if top == tag:
                break
        if tag == "article":
            self.in_article = False
        if tag in self.BLOCKS and self.current is not None:
            text = " ".join("".join(self.current).split())
            if text:
                self.blocks.append((tag, text))
            self.current = None

    def handle_data(self, data):
        if self.current is not None and not self.skipping():
            self.current.append(data)


def english_prose(page):
    """The paragraphs (headings, cells ...) of ``page`` that are English prose: no Chinese character
    and five English words in a row (three in a heading), outside code, outputs and math."""
    parser = Prose()
    parser.feed(text_of(page))
    return [text for tag, text in parser.blocks if not CJK.search(text)
            and (ENGLISH_TITLE if tag.startswith("h") else ENGLISH_PROSE).search(text)]


def learner_pages(site):
    """The pages a learner reads: everything but the API reference (the docstrings, what help()
    shows, stay English), the indexes and the search page."""
    return [p for p in sorted(Path(site).rglob("*.html"))
            if p.relative_to(site).parts[0] not in ("api", "_static", "_modules", "_sources")
            and p.name not in ("genindex.html", "search.html", "py-modindex.html")]


def test_every_page_a_learner_reads_is_chinese(zh_books):
    for site in zh_books:
        pages = learner_pages(site)
        assert len(pages) >= 25, pages
        english = {str(p.relative_to(site)): e[:3] for p in pages if (e := english_prose(p))}
        assert not english, english
        chapter = text_of(site / "chapters" / "05_residual_block.html")
        front = site / "index.html" if (site / "index.html").exists() else site / "index-instructor.html"
        assert len(CJK.findall(chapter)) > 500 and 'lang="zh-CN"' in text_of(front)


def test_the_prose_check_sees_english():
    page = ROOT / "tests" / "_tmp_prose.html"
    try:
        page.write_text('<nav><p>Skip to the main content of this page</p></nav><article><h1>残差结构</h1>'
                        '<h2>5. The residual block</h2><p>The residual block adds the shortcut to the main path.</p>'
                        '<p>用 <code>the shortcut adds its input back</code> 计算</p>'
                        '<div class="cell_output"><p>an output stays as it is computed</p></div></article>',
                        encoding="utf-8")
        assert english_prose(page) == ["5. The residual block", "The residual block adds the shortcut to the main path."]
    finally:
        page.unlink()


def test_the_chinese_figures_are_shown(zh_books):
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    import figures
    from minires.teach.diagrams import FIGURES
    by_function = {draw.__name__: name for name, draw in FIGURES.items()}
    drawn_in_cells = {by_function[f] for f in re.findall(r"^diagrams\.(draw_\w+)\(\);?$",
                                                         "\n".join(text_of(p) for p in (ROOT / "tools" / "notebooks").glob("*.py")),
                                                         re.M)}
    wanted = {n for n in drawn_in_cells | {"resnet34"} if n in figures.TRANSLATED["zh_CN"]}
    student, _ = zh_books
    shown = {m for p in student.rglob("*.html") for m in re.findall(r'<img[^>]+src="[^"]*?([\w.]+)\.zh_CN\.png"',
                                                                     text_of(p))}
    assert wanted and wanted <= shown, sorted(wanted - shown)


def test_the_chinese_solution_pages_speak_chinese(zh_books):
    from minires.teach.hints_zh import translate
    _, instructor = zh_books
    page = re.sub(r"<[^>]+>", "", text_of(next((instructor / "instructor" / "solutions").glob("*_conv2d.html"))))
    page = html.unescape(page)
    assert "参考答案" in page and "def conv2d_backward" in page
    from minires.teach.exercises import EXERCISES
    assert translate(EXERCISES["conv2d"]["general"]["dx"]) in page if isinstance(
        EXERCISES["conv2d"]["general"]["dx"], str) else CJK.search(page)


def test_each_page_links_to_its_twin(all_books):
    en, zh = all_books["student", "en"], all_books["student", "zh_CN"]
    assert 'href="../zh_CN/index.html" hreflang="zh-CN"' in text_of(en / "index.html")
    assert 'href="../../en/chapters/05_residual_block.html" hreflang="en"' in text_of(
        zh / "chapters" / "05_residual_block.html")


def no_cjk_fonts(tmp_path):
    """An environment in which fontconfig (and so Chromium) knows DejaVu only: matplotlib's copy of
    it, which every machine with the tests has. What a machine without fonts-noto-cjk draws."""
    import matplotlib
    conf = tmp_path / "fonts.conf"
    conf.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>'
                    f'<dir>{Path(matplotlib.get_data_path()) / "fonts" / "ttf"}</dir>'
                    f'<cachedir>{tmp_path / "fontcache"}</cachedir></fontconfig>\n', encoding="utf-8")
    return {**os.environ, "FONTCONFIG_FILE": str(conf)}


def screenshot(page, path, env=None):
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600",
                    "--hide-scrollbars", f"--screenshot={path}", page.as_uri()], capture_output=True, timeout=120,
                   env=env)
    assert path.exists() and path.stat().st_size > 20_000, path
    return path


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install -y chromium, as .ci/run does)")
def test_a_chinese_chapter_is_drawn_in_a_cjk_font_not_boxes(zh_books, tmp_path):
    """The same chapter screenshotted twice: as this machine draws it, and with fontconfig limited to
    DejaVu (no CJK font: every Chinese character a box). Were the first drawn with boxes too (no
    CJK font installed), the two would be the same picture."""
    from PIL import Image, ImageChops
    student, _ = zh_books
    page = student / "chapters" / "05_residual_block.html"
    seen = open_in_chromium(page, tmp_path)
    assert not seen["broken"] and CJK.search(seen["title"]), seen
    with_font = Image.open(screenshot(page, tmp_path / "with_font.png")).convert("L")
    boxes = Image.open(screenshot(page, tmp_path / "boxes.png", env=no_cjk_fonts(tmp_path))).convert("L")
    assert with_font.size == boxes.size
    differ = sum(ImageChops.difference(with_font, boxes).point(lambda v: 255 if v > 40 else 0).histogram()[255:])
    share = differ / (with_font.size[0] * with_font.size[1])
    assert share > 0.005, f"only {share:.2%} of the pixels differ: the Chinese is drawn as boxes (no CJK font?)"
    if os.environ.get("MINIRES_BOOK_SHOTS"):
        for shot in ("with_font.png", "boxes.png"):
            shutil.copy(tmp_path / shot, Path(os.environ["MINIRES_BOOK_SHOTS"]) / f"zh_05_{shot}")
