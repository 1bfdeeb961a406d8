"""``blockbuilder draw``: a diagram of the block hierarchy (SVG, PNG or HTML), straight from the YAML."""

from __future__ import annotations

import argparse

from blockbuilder.cli import positive_int

HELP = "draw the block hierarchy as an SVG, PNG or HTML diagram (no training, no weights)"
TAKES_ARCH = True
NEEDS_KERAS = False  # drawn from the specs: no model is built
DOCS = 'docs/visualise.md, "draw"'
EXAMPLES = (
    "blockbuilder draw resnet20_cifar -o resnet20.png --depth 2",
    "blockbuilder draw resnet50 -o resnet50.svg --depth 2",
    "blockbuilder draw googlenet -o googlenet.html  # a self-contained page, every level",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the draw arguments (imports nothing heavy)."""
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="where to write: a name ending in .svg, .png or .html")
    parser.add_argument("--depth", type=positive_int, default=None, metavar="N",
                        help="open blocks down to level N below the network (default: all levels)")


def check(args: argparse.Namespace) -> None:
    """The output's format (2 when unknown) and folder (1 when it cannot be written)."""
    from blockbuilder.cli import arguments
    from blockbuilder.errors import UsageError
    from blockbuilder.report.draw import FORMATS

    if not args.output.lower().endswith(FORMATS):
        raise UsageError(f"cannot tell the format of '{args.output}': use a name ending in {', '.join(FORMATS)}")
    arguments.writable(args.output)


def run(args: argparse.Namespace) -> int:
    """Write the diagram and say where it went."""
    from blockbuilder.report.draw import draw

    path = draw(args.architecture, args.output, depth=args.depth)
    print(f"wrote {path}")
    return 0
