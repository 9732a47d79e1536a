"""Strip notebooks before committing: no outputs, no execution counts, no per-machine metadata.

Students run the notebooks themselves; the repository keeps only what a person wrote, so
diffs stay readable and no stale output contradicts the code.

    python tools/strip_notebooks.py                       # every tutorials/*.ipynb, in place
    python tools/strip_notebooks.py a.ipynb b.ipynb
    python tools/strip_notebooks.py --check               # exit 1 if any notebook has outputs

(The notebooks themselves are built from tools/notebooks/*.py by tools/make_notebooks.py;
edit the source, not the .ipynb, or your change is lost at the next build.)
"""
import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METADATA = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}}


def strip(nb):
    """A notebook dict -> the same notebook stripped (a new dict)."""
    nb = json.loads(json.dumps(nb))
    for cell in nb.get("cells", []):
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k == "tags"}
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb["metadata"] = METADATA
    return nb


def is_stripped(nb):
    return json.dumps(strip(nb), sort_keys=True) == json.dumps(nb, sort_keys=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is not stripped")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "tutorials").glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        if is_stripped(nb):
            continue
        dirty.append(str(path))
        if not args.check:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(strip(nb), indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                           encoding="utf-8")
            os.replace(tmp, path)
    if dirty:
        print(("not stripped: " if args.check else "stripped: ") + ", ".join(dirty))
    return 1 if dirty and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
