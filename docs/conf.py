"""The minires book: Sphinx with MyST-NB (the tutorial notebooks, executed at build time), a book
theme, and the API reference from the docstrings.

    python -m sphinx -W -b html docs OUT                   # the student edition
    python -m sphinx -W -t instructor -b html docs OUT     # the instructor edition: + solutions, class notes

``chapters/`` is a copy of ``../tutorials`` made here (the notebooks and their README; the
notebooks find the repository's files from wherever they run). They are executed once and cached (``docs/.jupyter_cache``; a notebook whose
code changes runs again), so the second edition reuses the first's outputs. The figures are drawn
from the code at build time by ``tools/make_figures.py`` into ``docs/_generated/figures``; the
instructor pages are written from the exercise checker's own specs (``docs/_ext/instructor.py``).
"""
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import minires  # noqa: E402

project = "minires"
author = "the minires authors"
copyright = "2026, the minires authors"
release = version = minires.__version__

CHAPTERS = DOCS / "chapters"      # the notebooks, copied: a page's links must resolve inside the book


def copy_chapters():
    """tutorials/*.ipynb and tutorials/README.md into docs/chapters/, where they are pages; a file
    is rewritten only when it changed (the build then rereads it), old ones removed."""
    CHAPTERS.mkdir(exist_ok=True)
    wanted = {p.name: p for p in sorted((ROOT / "tutorials").glob("*.ipynb"))}
    wanted["README.md"] = ROOT / "tutorials" / "README.md"
    for old in CHAPTERS.iterdir():
        if old.name not in wanted and old.is_file():   # a notebook renamed or removed
            old.unlink()
    for name, source in wanted.items():
        target = CHAPTERS / name
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)
    shutil.copytree(ROOT / "tutorials" / "results", CHAPTERS / "results", dirs_exist_ok=True)  # figures they show


copy_chapters()

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.viewcode", "figures", "instructor", "readme", "docstrings",
              "languages", "notebooks_zh"]

INSTRUCTOR = tags.has("instructor")  # noqa: F821 -- Sphinx defines ``tags`` in conf.py's namespace

exclude_patterns = ["_build", "_*.md", "_generated/**.md", ".jupyter_cache", "chapters/.ipynb_checkpoints"]
if INSTRUCTOR:       # its own front page: the student's, and the instructor's part
    root_doc = "index-instructor"
    exclude_patterns += ["index.md"]
else:                # the student edition has no solutions
    exclude_patterns += ["index-instructor.md", "instructor/**", "chapters/*_solutions.ipynb"]

# ----- the Chinese edition (issue 30): Sphinx's gettext catalogs, one per page
#     python -m sphinx -b gettext docs /tmp/pot -D nb_execution_mode=off
#     python -m sphinx -b gettext -t instructor docs /tmp/pot-i -D nb_execution_mode=off  # + the instructor's pages
#     cp -rn /tmp/pot-i/. /tmp/pot && rm -r /tmp/pot/instructor/solutions   # those are written in Chinese
#     sphinx-intl update -p /tmp/pot -l zh_CN -d docs/locales       # new and changed paragraphs
#     python docs/_ext/catalogs.py docs/locales/zh_CN/LC_MESSAGES/PAGE.po     # after translating
#     python -m sphinx -W -D language=zh_CN -b html docs OUT/zh_CN   # the Chinese book (OUT/en: the English)
# A paragraph with no translation yet is shown in English; tests/test_book_zh.py fails when a
# catalog (docs/_ext/languages.py: LEARNER_FACING) has one, or a translation that lost its code,
# math or links or left the glossary's terms (docs/_ext/glossary.py, the page docs/glossary.md).
language = "en"
locale_dirs = ["locales/"]
gettext_compact = False          # one catalog per page: docs/locales/zh_CN/LC_MESSAGES/<page>.po
gettext_uuid = False             # no uuids in the templates: the catalogs' diffs stay readable
gettext_location = False         # no source line numbers either: they change with every edit above
gettext_additional_targets = []  # literal blocks, code and images stay as they are
# (-D language=zh_CN is applied after this file runs: what depends on the language -- the title,
# the figures' labels and font, the link to the other edition -- is set in docs/_ext/languages.py.)

# ----- MyST and the notebooks
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "cache"
nb_execution_cache_path = str(DOCS / ".jupyter_cache")
nb_execution_timeout = 900           # a cell may take minutes on a loaded 2-core machine
nb_execution_raise_on_error = True   # a chapter that fails is a failed build
nb_execution_show_tb = True
nb_merge_streams = True
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)

# ----- the API reference
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "none"           # the signatures are real (issue 27); the docstrings say the types
add_module_names = False

# ----- the page
html_theme = "sphinx_book_theme"
html_title = "minires: ResNet from first principles" + (" (instructor edition)" if INSTRUCTOR else "")
html_theme_options = {"show_toc_level": 2, "use_download_button": True, "home_page_in_toc": True}
html_static_path = []
html_last_updated_fmt = None
suppress_warnings = ["mystnb.unknown_mime_type",
                     "myst.header"]   # the reference pages include README sections whose subsections are ###
