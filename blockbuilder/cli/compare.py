"""``blockbuilder compare``: a table and an accuracy-vs-MACs bubble chart of zoo models and trained runs."""

from __future__ import annotations

import argparse
import json

HELP = "compare architectures and trained runs: a table and an accuracy vs MACs bubble chart"
TAKES_ARCH = False  # several architectures or run directories
NEEDS_KERAS = False  # figures come from the specs: no model is built
DOCS = 'docs/visualise.md, "compare"'
EXAMPLES = (
    "blockbuilder compare vgg16 resnet18 resnet50 resnet152 googlenet inception_v3 -o chart.png",
    "blockbuilder compare lenet5 runs/lenet5 --json  # a zoo name beside a trained run",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the compare arguments (imports nothing heavy)."""
    parser.add_argument("sources", nargs="+", metavar="ARCH_OR_RUN_DIR",
                        help="zoo names, architecture files or run directories (with metrics.json)")
    parser.add_argument("-o", "--output", metavar="CHART", help="write the bubble chart here (.png or .svg)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")


def check(args: argparse.Namespace) -> None:
    """The chart's format and folder, before any source is read."""
    from blockbuilder.cli import arguments
    from blockbuilder.report.compare import check_chart_path

    if args.output:
        check_chart_path(args.output)
        arguments.writable(args.output)


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON) and write the chart; bad names are usage errors (exit 2)."""
    from blockbuilder.cli.console import console
    from blockbuilder.report.compare import as_dicts, chart, compare_rows, table

    rows = compare_rows(args.sources)
    if args.json:
        print(json.dumps(as_dicts(rows), indent=2))
    else:
        console().print(table(rows))
    if args.output:
        print(f"wrote {chart(rows, args.output)}")
    return 0
