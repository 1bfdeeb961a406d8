"""``blockbuilder evaluate RUN --data SOURCE``: a finished run scored on other data, as training scores its test set.

The run, the data source and the output folder are checked before TensorFlow is imported
(:func:`blockbuilder.training.evaluate.check_evaluation`).
"""

from __future__ import annotations

import argparse

from blockbuilder.cli import positive_int

HELP = "score a finished run on any data set: test metrics, per-class results, confusion matrix"
TAKES_ARCH = False

DOCS = 'docs/training.md, "Evaluating a run on other data"'
EXAMPLES = (
    "blockbuilder evaluate runs/lenet5",
    "blockbuilder evaluate runs/photos --data folder:new_photos",
    "blockbuilder evaluate runs/photos --data folder:photos/test -o results/photos-test --json",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the evaluate arguments."""
    parser.add_argument("run", metavar="RUN", help="a finished run directory (with model.keras and metrics.json)")
    parser.add_argument("--data", metavar="SOURCE",
                        help="digits, tfds:NAME[:SPLIT], folder:PATH, npz:PATH or csv:PATH (default: the run's "
                             "own data set, its test split)")
    parser.add_argument("-o", "--output", metavar="DIR", help="where the results go (default RUN/evaluations/NAME)")
    parser.add_argument("--force", action="store_true", help="replace an evaluation already in the output folder")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="images per batch")
    parser.add_argument("--json", action="store_true", help="print the metrics.json written, as it is")


def check(args: argparse.Namespace) -> None:
    """The run, the data source and the output, before TensorFlow is imported."""
    from blockbuilder.training.evaluate import check_evaluation

    args.plan = check_evaluation(args.run, args.data, args.output, args.force)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the files, print the results."""
    import json

    from blockbuilder.cli.report import print_test_results
    from blockbuilder.training.evaluate import evaluate

    metrics = evaluate(args.plan, args.batch_size)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    print_test_results(args.plan.output, metrics, f"{args.run} on {args.plan.source} -> {args.plan.output}")
    return 0
