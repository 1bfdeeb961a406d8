"""``blockbuilder compare``: a table and an accuracy-vs-MACs bubble chart of zoo models and trained runs."""

from __future__ import annotations

import argparse
import json

HELP = "compare architectures and trained runs: a table and an accuracy vs MACs bubble chart"
TAKES_ARCH = False  # several architectures or run directories


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the compare arguments (imports nothing heavy)."""
    parser.add_argument("sources", nargs="+", metavar="ARCH_OR_RUN_DIR",
                        help="zoo names, architecture files or run directories (with metrics.json)")
    parser.add_argument("-o", "--output", metavar="CHART", help="write the bubble chart here (.png or .svg)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON) and write the chart; bad names are usage errors (exit 2)."""
    from blockbuilder.cli.main import _console
    from blockbuilder.report.compare import as_dicts, chart, compare_rows, table
    from blockbuilder.errors import UsageError

    if args.output and not args.output.lower().endswith((".png", ".svg")):
        raise UsageError(f"cannot tell the chart format of '{args.output}': use a name ending in .png or .svg")
    rows = compare_rows(args.sources)
    if args.json:
        print(json.dumps(as_dicts(rows), indent=2))
    else:
        _console().print(table(rows))
    if args.output:
        print(f"wrote {chart(rows, args.output)}")
    return 0
