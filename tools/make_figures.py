"""Write the book's figures, drawn from the code itself: OUT_DIR/NAME.png for each (issue 28).

    .venv/bin/python tools/make_figures.py docs/figures                  # every figure
    .venv/bin/python tools/make_figures.py /tmp/figs --only resnet34 im2col
    .venv/bin/python tools/make_figures.py /tmp/figs --list              # the names
    .venv/bin/python tools/make_figures.py /tmp/figs --language zh_CN    # NAME.zh_CN.png, in Chinese

The figures are minires/teach/diagrams.py:FIGURES; each draws what the models, im2col, the
padding rules and the schedules compute, so a figure cannot disagree with the code. Needs
matplotlib (``pip install ".[plots]"``); the degradation figure also needs scikit-learn's digits.
``--language zh_CN`` draws them with the Chinese texts of the book (docs/_ext/figure_labels_zh.py)
and a CJK font (Debian: fonts-noto-cjk), as the Chinese book does; without the font it stops
with an error instead of drawing boxes.
"""
import argparse
import sys
import time
from pathlib import Path

from minires.teach.diagrams import FIGURES, draw_all


def main(argv=None):
    """Parse the command line, draw, print each file written with its time; 0 on success, 2 on a bad name."""
    parser = argparse.ArgumentParser(description="Write minires's figures to OUT_DIR/NAME.png.")
    parser.add_argument("out_dir", nargs="?", help="the folder to write to (made if missing)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="draw only these figures")
    parser.add_argument("--list", action="store_true", help="print the figures' names and stop")
    parser.add_argument("--language", default="en", choices=["en", "zh_CN"],
                        help="the figures' language (zh_CN: OUT_DIR/NAME.zh_CN.png, needs a CJK font)")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(FIGURES))
        return 0
    if not args.out_dir:
        parser.error("give OUT_DIR (or --list)")
    unknown = [n for n in args.only or [] if n not in FIGURES]
    if unknown:
        print(f"make_figures: no figure called {', '.join(unknown)}; the figures: {', '.join(FIGURES)}",
              file=sys.stderr)
        return 2
    start = time.perf_counter()
    last = [start]

    def log(path):
        now = time.perf_counter()
        print(f"{path}  ({now - last[0]:.1f} s)")
        last[0] = now

    if args.language != "en":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs" / "_ext"))
        import figures                                   # the book's: the texts, the font, glyphs checked
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        try:
            paths = [log(p) or p for p in figures.draw_translated(args.out_dir, args.language, args.only)]
        except RuntimeError as e:                        # no CJK font
            print(f"make_figures: {e}", file=sys.stderr)
            return 1
    else:
        paths = draw_all(args.out_dir, args.only, log=log)
    print(f"{len(paths)} figures in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
