"""``blockbuilder features``: the feature maps of every stage for one image, and the first layer's filters."""

from __future__ import annotations

import argparse

from blockbuilder.cli import positive_int
from blockbuilder.text import plural

HELP = "draw the feature maps of every stage for one image, and the learned first-layer filters (PNG)"
TAKES_ARCH = False  # takes a trained run, not an architecture file
DOCS = 'docs/visualise.md, "features"'
EXAMPLES = (
    "blockbuilder features runs/lenet5 --image digit.png -o features.png",
    "blockbuilder features runs/lenet5 --image digit.png -o features.png --maps 8",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the features arguments (imports nothing heavy)."""
    parser.add_argument("model", metavar="RUN_DIR_OR_MODEL", help="a run directory or a .keras file")
    parser.add_argument("--image", required=True, metavar="IMAGE", help="the input image (PNG, JPEG, ...)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.png", help="where to write the PNG")
    parser.add_argument("--maps", type=positive_int, default=16, metavar="N",
                        help="feature maps shown per stage, most active first")


def check(args: argparse.Namespace) -> None:
    """The output's format and folder, the model's files and the image, before TensorFlow."""
    from blockbuilder.cli import arguments
    from blockbuilder.images import check_image
    from blockbuilder.serving.source import inspect_source

    arguments.suffix(args.output, (".png",))
    inspect_source(args.model)
    check_image(args.image)  # decoded: one image costs little, and a truncated one is told before TensorFlow
    arguments.writable(args.output)


def run(args: argparse.Namespace) -> int:
    """Write the picture and say where it went; 1 on an unreadable model or image."""
    from blockbuilder.serving.features import features

    path, stages = features(args.model, args.image, args.output, maps=args.maps)
    print(f"wrote {path} ({plural(len(stages), 'stage')}: {', '.join(stages)})")
    return 0
