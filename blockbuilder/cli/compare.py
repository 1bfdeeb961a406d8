"""``blockbuilder compare``: a table and an accuracy-vs-MACs bubble chart of zoo models and trained runs."""

from __future__ import annotations

import argparse
import json

HELP = "compare architectures and trained runs: a table and an accuracy vs MACs (or latency) bubble chart"
TAKES_ARCH = False  # several architectures or run directories


def NEEDS_KERAS(args: argparse.Namespace) -> bool:  # noqa: N802  (the attribute every command module has)
    """Figures come from the specs: a model is built only to measure its latency."""
    return bool(args.x == "measured-ms")


DOCS = 'docs/visualise.md, "compare"'
EXAMPLES = (
    "blockbuilder compare vgg16 resnet18 resnet50 resnet152 googlenet inception_v3 -o chart.png",
    "blockbuilder compare lenet5 runs/lenet5 --json  # a zoo name beside a trained run",
    "blockbuilder compare --zoo imagenet -o imagenet.png  # every ImageNet network of the zoo",
    "blockbuilder compare --zoo imagenet --x predicted-ms -o time.png  # after profile --calibrate",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the compare arguments (imports nothing heavy)."""
    from blockbuilder.cli import positive_int
    from blockbuilder.report.compare import AXES

    parser.add_argument("sources", nargs="*", metavar="ARCH_OR_RUN_DIR",
                        help="zoo names, architecture files or run directories (with metrics.json)")
    parser.add_argument("--zoo", metavar="DATASET",
                        help="add every zoo network that reports an accuracy on DATASET (e.g. imagenet)")
    parser.add_argument("--x", choices=AXES, default="macs",
                        help="the x axis: MACs, latency predicted from this machine's table (blockbuilder "
                             "profile --calibrate) or measured here (builds each model)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="the batch a latency is for")
    parser.add_argument("-o", "--output", metavar="CHART", help="write the bubble chart here (.png or .svg)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")


def check(args: argparse.Namespace) -> None:
    """The chart's format and folder, before any source is read."""
    from blockbuilder.cli import arguments
    from blockbuilder.errors import UsageError
    from blockbuilder.report.compare import check_chart_path, zoo_sources

    if not args.sources and not args.zoo:
        raise UsageError("nothing to compare: name architectures or run directories, or --zoo DATASET")
    if args.zoo:
        args.sources = [*args.sources, *(name for name in zoo_sources(args.zoo) if name not in args.sources)]
    if args.output:
        check_chart_path(args.output)
        arguments.writable(args.output)


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON) and write the chart; bad names are usage errors (exit 2)."""
    from blockbuilder.cli.console import console
    from blockbuilder.report.compare import as_dicts, chart, compare_rows, table

    rows = compare_rows(args.sources, args.x, args.batch_size)
    if args.json:
        print(json.dumps(as_dicts(rows), indent=2))
    else:
        console().print(table(rows, args.x, args.batch_size))
    if args.output:
        print(f"wrote {chart(rows, args.output, args.x, args.batch_size)}")
    return 0
