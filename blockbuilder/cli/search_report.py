"""``blockbuilder search-report DIR``: the trials of a search as a table; trials.csv, best.yaml, pareto.png."""

from __future__ import annotations

import argparse

HELP = "show a search's trials (values, params, MACs, accuracy, time); rewrite trials.csv, best.yaml, pareto.png"
TAKES_ARCH = False
NEEDS_KERAS = False
DOCS = 'docs/search.md, "The search directory"'
EXAMPLES = (
    "blockbuilder search-report searches/lenet",
    "blockbuilder search-report searches/lenet --zoo lenet5  # the zoo's LeNet-5 beside the trials",
    "blockbuilder search-report searches/lenet --json",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the report's arguments (imports nothing heavy)."""
    parser.add_argument("directory", metavar="DIR", help="a search directory ('blockbuilder search --output')")
    parser.add_argument("--storage", metavar="URL",
                        help="the storage the search used, when it is not DIR/study.db (a password is "
                             "never written to DIR/search.json)")
    parser.add_argument("--zoo", nargs="+", default=[], metavar="NAME",
                        help="reference networks to draw beside the trials (zoo names or files with "
                             "'meta: accuracy')")
    parser.add_argument("--json", action="store_true", help="print the trials as JSON instead of a table")


def check(args: argparse.Namespace) -> None:
    """Find the search and its storage before anything is drawn."""
    from pathlib import Path

    from blockbuilder.search.directory import read_search_file
    from blockbuilder.search.storage import open_study, report_storage_url

    args.directory = Path(args.directory)
    args.record = read_search_file(args.directory)
    url = report_storage_url(args.directory, args.record, args.storage)
    args.study = open_study(url, str(args.record["study"]), None)


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON) and write the three files."""
    import json
    from dataclasses import asdict

    from blockbuilder.cli.console import console
    from blockbuilder.report.compare import compare_rows
    from blockbuilder.search.console import table
    from blockbuilder.search.report import write_reports

    if not hasattr(args, "study"):
        check(args)
    references = compare_rows(args.zoo) if args.zoo else []
    rows = write_reports(args.directory, args.study, args.record, references=references)
    if args.json:
        print(json.dumps([{k: v for k, v in asdict(row).items() if k != "overrides"} for row in rows], indent=2))
    else:
        console().print(table(rows, args.record.get("trials")))
        written = [name for name in ("trials.csv", "best.yaml", "pareto.png") if (args.directory / name).exists()]
        print(f"wrote {', '.join(str(args.directory / name) for name in written)}")
    return 0
