"""Draw the book's concept figures into book/figures/ (`make figures`).

    python tools/figures.py                 # (re)write every figure as SVG
    python tools/figures.py --check         # exit 1 if a committed SVG differs from its source
    python tools/figures.py --png /tmp/figs # also write PNG previews, to look at
    python tools/figures.py --only ch02     # the figures of the modules whose name starts so

Each module tools/diagrams/chNN.py has ``FIGURES``: name -> function returning a Figure;
the figure is written to book/figures/<name>.svg. SVGs are byte-for-byte reproducible
(fixed hash salt, no date), so --check can compare them.
"""

from __future__ import annotations

import argparse
import importlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "figures"
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]  # this checkout's package and diagrams

import matplotlib.pyplot as plt  # noqa: E402

from diagrams import style  # noqa: E402


def all_figures(only: str = "") -> dict[str, object]:
    """name -> drawing function, over every chapter module (in file order)."""
    found: dict[str, object] = {}
    for path in sorted((ROOT / "tools" / "diagrams").glob("ch*.py")):
        if not path.stem.startswith(only):
            continue
        module = importlib.import_module(f"diagrams.{path.stem}")
        for name, draw in module.FIGURES.items():
            if name in found:
                raise ValueError(f"figure {name!r} is defined twice")
            found[name] = draw
    return found


def render(draw: object) -> bytes:
    """The SVG bytes of one figure."""
    with plt.rc_context(style.RC):
        fig = draw()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
        plt.close(fig)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--png", type=Path)
    parser.add_argument("--only", default="")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, draw in all_figures(args.only).items():
        svg, target = render(draw), OUT / f"{name}.svg"
        if args.check:
            if not target.exists() or target.read_bytes() != svg:
                stale.append(name)
        else:
            target.write_bytes(svg)
        if args.png:
            args.png.mkdir(parents=True, exist_ok=True)
            with plt.rc_context(style.RC):
                fig = draw()
                fig.savefig(args.png / f"{name}.png", dpi=110)
                plt.close(fig)
    if stale:
        print("out of date (run `python tools/figures.py`):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
