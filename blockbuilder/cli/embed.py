"""``blockbuilder embed RUN_OR_ARCH IMAGES... --block stage4 -o features.npy``: one vector per image.

The activations of any block, pooled over positions: the building block of nearest-neighbour search
and linear probes. Arguments first, TensorFlow second: the output, the images' headers, the model or
architecture, the weights source and the block's name are all checked before Keras is imported.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from blockbuilder.cli import positive_int, weights
from blockbuilder.text import plural

HELP = "the activations of one block for images, pooled to one vector per image (.npy)"
TAKES_ARCH = False  # a trained run, or an architecture: this module tells which
POOLS = ("avg", "max", "none")

DOCS = 'docs/transfer.md, "blockbuilder embed"'
EXAMPLES = (
    "blockbuilder embed runs/flowers photos/*.jpg --block stage4 -o features.npy",
    "blockbuilder embed resnet50 --weights imagenet photos/*.jpg --block stage4 -o features.npy",
    "blockbuilder embed runs/lenet5 digit.png --block dense2 -o dense2.npy",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the embed arguments (imports nothing heavy)."""
    parser.add_argument("source", metavar="RUN_OR_ARCH",
                        help="a run directory or .keras file, or an architecture (a file or zoo name, built with "
                             "its weights:)")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG ...)")
    parser.add_argument("--block", required=True, metavar="PATH",
                        help="the block whose output to take (stage4, stage3.bottleneck2, head.dense1 ...)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.npy",
                        help="where to write the (images, features) float32 array")
    parser.add_argument("--pool", choices=POOLS, default="avg",
                        help="over positions: average, maximum, or none (flattened)")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="images per forward pass")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                        help="with an architecture: override a value (repeatable)")
    weights.add_argument(parser)


def _trained(source: str) -> bool:
    path = Path(source)
    return path.is_dir() or path.suffix == ".keras"


def check(args: argparse.Namespace) -> None:
    """Output, images (decoded), model or architecture, weights and block name, before TensorFlow."""
    from blockbuilder.cli import arguments
    from blockbuilder.errors import BlockbuilderError, UsageError
    from blockbuilder.images import check_image
    from blockbuilder.language.architecture import loads
    from blockbuilder.transfer.embed import block_names

    arguments.suffix(args.output, (".npy",))
    for image in args.images:
        check_image(image)  # decoded: a truncated image is told now, not after the model is built
    arguments.writable(args.output)
    args.model_file, args.architecture = None, None
    paths: list[str] = []
    if _trained(args.source):
        from blockbuilder.serving.source import inspect_source

        if args.weights or args.overrides:
            raise UsageError("--weights and --set change an architecture; a trained model has its own weights")
        files = inspect_source(args.source)
        args.model_file = files.model_file
        if files.resolved_yaml:
            try:
                paths = [node.path for node in loads(files.resolved_yaml).root.walk() if node.path]
            except BlockbuilderError:
                paths = []  # the layer names are checked once the model is loaded
    else:
        args.architecture = args.load_options.load(args.source)  # --set and --weights, made by main
        weights.check(args)
        paths = [node.path for node in args.architecture.root.walk() if node.path]
    if paths and args.block not in paths:
        from blockbuilder.errors import did_you_mean

        top = [path for path in paths if "." not in path]
        raise UsageError(f"--block: no block called '{args.block}'{did_you_mean(args.block, block_names(paths))} "
                         f"(top-level blocks: {', '.join(top)})")


def run(args: argparse.Namespace) -> int:
    """Compute and write the vectors; say how many and how long."""
    import numpy as np

    from blockbuilder.files import atomic_path
    from blockbuilder.transfer.embed import embed

    if args.model_file is not None:
        from blockbuilder.serving.source import load_keras_file

        model = load_keras_file(args.model_file)
    else:
        model, _ = weights.build(args.architecture)
    vectors = embed(model, args.images, args.block, args.pool, args.batch_size)
    with atomic_path(args.output) as temporary, open(temporary, "wb") as stream:
        np.save(stream, vectors)
    pooled = "flattened" if args.pool == "none" else f"{args.pool}-pooled"
    size = f"{plural(vectors.shape[0], 'image')} x {plural(vectors.shape[1], 'feature')}"
    print(f"wrote {args.output} ({size} of {args.block}, {pooled})")
    return 0
