"""Sphinx extension: the README's reference sections as pages of the book, their links made right.

The reference pages (``docs/reference/*.md``) include sections of the repository's README.md,
so the reference is written once. A README link is written for GitHub, relative to the
repository's root; in the book it is rewritten when the README is read for an include:

- ``[x](#anchor)``: kept when the heading is on the same page, pointed at its page when another
  reference page includes it, and otherwise made plain text (the heading is not in the book);
- ``[x](tutorials/NAME.ipynb)``, ``[x](tutorials/README.md)``: the chapter, or the chapters' list;
- any other link to a file of the repository: plain text, the path named ("in the repository").
"""
import re

# README section -> the reference page that includes it (docs/reference/PAGE.md)
PAGES = {"The command line": "command-line", "Published weights": "weights", "The Keras flavour": "weights",
         "Correctness": "correctness", "GPU": "gpu", "More than one machine": "more-than-one-machine"}
LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s]+)\)")


def slug(heading):
    """The anchor MyST gives a heading (``myst_heading_anchors``): lower case, punctuation dropped,
    spaces as hyphens."""
    return re.sub(r"\s+", "-", re.sub(r"[^\w\- ]", "", heading.strip().lower()))


def anchors(text):
    """{anchor: the page its heading is on, or None}, for every ## and ### heading of the README."""
    found, page = {}, None
    for line in text.splitlines():
        m = re.match(r"^(##+) (.*)$", line)
        if m:
            if len(m.group(1)) == 2:
                page = PAGES.get(m.group(2).strip())
            found[slug(m.group(2))] = page
    return found


def rewrite(text, page):
    """The README's text with its links made right for ``page`` (a reference page's name)."""
    where = anchors(text)

    def fix(m):
        label, target = m.group(1), m.group(2)
        if target.startswith(("http://", "https://", "mailto:")):
            return m.group(0)
        if target.startswith("#"):
            home = where.get(target[1:])
            if home == page:
                return m.group(0)
            return f"[{label}]({home}.md{target})" if home else label
        path, _, anchor = target.partition("#")
        if path == "tutorials/README.md":
            return f"[{label}](../chapters/README.md)"
        if path.startswith("tutorials/") and path.endswith(".ipynb"):
            return f"[{label}](../chapters/{path[len('tutorials/'):]})"
        return f"{label} (`{path}` in the repository)"

    return LINK.sub(fix, text)


def on_include_read(app, relative_path, parent_docname, content):
    if relative_path.name == "README.md" and relative_path.parent.name != "chapters":
        content[0] = rewrite(content[0], parent_docname)


def on_source_read(app, docname, content):
    """The chapters' list (tutorials/README.md, a page of the book): a link to a file that is not a
    page of this edition (the results folder; the solutions, in the student edition) is plain text."""
    if docname != "chapters/README":
        return

    def fix(m):
        label, target = m.group(1), m.group(2)
        path = target.partition("#")[0]
        if target.startswith(("http://", "https://", "#")) or not path:
            return m.group(0)
        page = "chapters/" + path.rsplit(".", 1)[0]
        if path.endswith((".ipynb", ".md")) and page in app.env.found_docs:
            return m.group(0)
        return f"{label} (`tutorials/{path}` in the repository)"

    content[0] = LINK.sub(fix, content[0])


def setup(app):
    app.connect("include-read", on_include_read)
    app.connect("source-read", on_source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
