"""The book (docs/): both editions build with -W, every chapter executed, checked as a reader sees it.

One build of each edition for the whole module (the chapters execute once, into a fresh
jupyter-cache: the outputs are this checkout's, never a cache's from an older one), then:
the student edition has the chapters with their outputs, the figures drawn from the code, an
API index naming every public layer, block and model, and no solutions; the instructor edition
adds a solutions page per exercise and the class notes; no local link or image of either is
broken; and headless Chromium opens the landing page and a chapter and finds their figures
loaded. These tests are the notebooks' tests too (``-m "not notebooks"`` leaves them out).
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
def books(tmp_path_factory):
    base = tmp_path_factory.mktemp("book")
    cache = base / "jupyter_cache"
    student = build(base / "student", cache)
    instructor = build(base / "instructor", cache, "-t", "instructor")
    return student, instructor


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


def test_no_local_link_or_image_is_broken(books):
    for site in books:
        assert not broken_links(site), broken_links(site)[:20]


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
