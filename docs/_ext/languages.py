"""Sphinx extension: the book in more than one language (issue 30), each page linked to its twin.

The editions are built side by side, one folder per language::

    python -m sphinx -W -b html docs OUT/en
    python -m sphinx -W -D language=zh_CN -b html docs OUT/zh_CN

and every page starts with a link to the same page in the other edition (``../zh_CN/PAGE.html``
from ``OUT/en``, ``../en/PAGE.html`` from ``OUT/zh_CN``). The links are written only when the
output folder is named after its language (``en``, ``zh_CN``): a book built anywhere else (a
test's tmp folder, ``docs/_build/html``) has no twin beside it, and no link that would be broken. A page's text comes from the catalogs
``docs/locales/LANG/LC_MESSAGES/PAGE.po`` (conf.py); the figures' labels and font from
``figures.py``. ``LEARNER_FACING`` lists the catalogs that must be complete (no untranslated or
fuzzy entry: tests/test_book_zh.py): every page.
"""
import posixpath
from pathlib import Path

# The other editions: {language: (its folder under OUT, the link's text, shown in the other editions)}
EDITIONS = {"en": ("en", "English", "en"), "zh_CN": ("zh_CN", "中文", "zh-CN")}

# The catalogs (docnames) a learner reads, which must be fully translated (tests/test_book_zh.py):
# every page of the student and instructor editions. On the API pages, the page's own title and
# introduction; the docstrings they pull in stay English (what ``help()`` shows). The instructor
# edition's solution pages are written in the build's language (docs/_ext/instructor.py) and have
# no catalog.
LEARNER_FACING = (["index", "index-instructor", "learning-path", "glossary", "chapters/README"]
                  + [f"chapters/{p.stem}" for p in sorted((Path(__file__).resolve().parents[2] / "tutorials")
                                                         .glob("*.ipynb"))]
                  + [f"reference/{name}" for name in ("command-line", "gpu", "more-than-one-machine", "weights",
                                                      "correctness")]
                  + ["instructor/index", "instructor/teaching"]
                  + [f"api/{name}" for name in ("index", "layers", "models", "keras", "data", "train", "parallel",
                                                "weights", "predict", "explain", "checker", "backend")])

TITLES = {"zh_CN": "minires：从第一性原理实现 ResNet"}


def other_editions(language):
    return [(folder, name, code) for lang, (folder, name, code) in EDITIONS.items() if lang != (language or "en")]


def twin_links(app, pagename):
    """[(href, text, hreflang)] from ``pagename`` of this edition to the same page of each other
    edition; [] when the book is not built into OUT/<its language's folder>."""
    if Path(app.outdir).name != EDITIONS.get(app.config.language or "en", ("en",))[0]:
        return []
    depth = pagename.count("/")
    up = "../" * (depth + 1)       # from OUT/LANG/a/b/page.html up to OUT/
    suffix = app.builder.out_suffix if hasattr(app.builder, "out_suffix") else ".html"
    return [(posixpath.join(up + folder, pagename + suffix), name, code)
            for folder, name, code in other_editions(app.config.language)]


def add_switch(app, pagename, templatename, context, doctree):
    """Put the link(s) to the twin page(s) at the top of the page's body."""
    links = twin_links(app, pagename)
    if doctree is None or "body" not in context or not links:     # genindex, search: no body of their own
        return
    links = " · ".join(f'<a class="reference external" href="{href}" hreflang="{code}">{text}</a>'
                       for href, text, code in links)
    context["body"] = f'<p class="minires-language-switch">{links}</p>\n' + context["body"]


def on_config(app, config):
    if config.language in TITLES and config.html_title.startswith("minires: ResNet from first principles"):
        config.html_title = TITLES[config.language] + config.html_title[len("minires: ResNet from first principles"):]


def setup(app):
    app.connect("config-inited", on_config)
    app.connect("html-page-context", add_switch)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
