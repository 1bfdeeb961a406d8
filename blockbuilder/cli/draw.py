"""``blockbuilder draw``: a diagram of the block hierarchy (SVG, PNG or HTML), straight from the YAML."""

from __future__ import annotations

import argparse
import sys

from blockbuilder.cli import positive_int

HELP = "draw the block hierarchy as an SVG, PNG or HTML diagram (no training, no weights)"
TAKES_ARCH = True


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the draw arguments (imports nothing heavy)."""
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="where to write: a name ending in .svg, .png or .html")
    parser.add_argument("--depth", type=positive_int, default=None, metavar="N",
                        help="open blocks down to level N below the network (default: all levels)")


def run(args: argparse.Namespace) -> int:
    """Write the diagram and say where it went; 2 on an unknown format, 1 on an unwritable path."""
    from blockbuilder.report.draw import FORMATS, draw

    if not args.output.lower().endswith(FORMATS):
        print(f"blockbuilder draw: error: cannot tell the format of '{args.output}': "
              f"use a name ending in {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    path = draw(args.architecture, args.output, depth=args.depth)
    print(f"wrote {path}")
    return 0
