"""``blockbuilder report RUN``: a finished run's test results again (no TensorFlow).

Reads the run directory's ``metrics.json``: the test metrics, per-class precision/recall/F1, the most
confused pairs, and where the pictures are (confusion matrix, misclassified images, curves).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HELP = "print a trained run's results again: test metrics, per-class precision/recall/F1, confusions"
TAKES_ARCH = False
NEEDS_KERAS = False
PICTURES = ("confusion_matrix.png", "misclassified.png", "curves.png")

DOCS = 'docs/training.md, "The run directory"'
EXAMPLES = (
    "blockbuilder report runs/lenet5",
    "blockbuilder report runs/lenet5 --json | jq '.test.per_class'",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the report arguments."""
    parser.add_argument("run", metavar="RUN", help="a run directory (with metrics.json)")
    parser.add_argument("--json", action="store_true", help="print metrics.json as it is")


def check(args: argparse.Namespace) -> None:
    """Read the run before anything is printed."""
    from blockbuilder.training.rundir import read_metrics

    args.metrics = read_metrics(args.run)


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-" if value is None else str(value)


def run(args: argparse.Namespace) -> int:
    """Print the report."""
    metrics = args.metrics
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    print_test_results(Path(args.run), metrics,
                       f"{args.run}: {_epochs(metrics.get('epochs_completed'))} ({metrics.get('stopped', '?')}), "
                       f"best epoch {metrics.get('best_epoch', '?')}, {metrics.get('dataset', '?')}")
    return 0


def _epochs(count: Any) -> str:
    from blockbuilder.text import plural

    return plural(count, "epoch") if isinstance(count, int) else "? epochs"


def print_test_results(folder: Path, metrics: dict[str, Any], heading: str) -> None:
    """The test metrics, the per-class table, the most confused pairs and the pictures in ``folder``
    (``report`` of a run, ``evaluate`` of a run on other data)."""
    from rich.table import Table

    from blockbuilder.cli.console import console
    from blockbuilder.text import plural

    out = console()
    test = metrics["test"]
    examples = metrics.get("examples", {}).get("test", "?")
    out.print(heading)
    shown = plural(examples, "image") if isinstance(examples, int) else f"{examples} images"
    out.print(f"test ({shown}): " + "  ".join(
        f"{key} {_number(value)}" for key, value in test.items() if not isinstance(value, (list, dict, str))))
    rows = test.get("per_class") or []
    if rows:
        table = Table(title="per class (test)")
        for column in ("class", "precision", "recall", "f1", "support"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for row in rows:
            table.add_row(*(_number(row.get(key)) for key in ("class", "precision", "recall", "f1", "support")))
        out.print(table)
    if isinstance(test.get("per_class_omitted"), str):
        out.print(f"per class: {test['per_class_omitted']}")
    confused = test.get("most_confused") or []
    if confused:
        out.print("most confused: " + ", ".join(f"{c['true']} -> {c['predicted']} ({c['count']})" for c in confused))
    pictures = [str(folder / name) for name in PICTURES if (folder / name).is_file()]
    if pictures:
        out.print("pictures: " + "  ".join(pictures))
