"""``blockbuilder export``: write a trained model as a SavedModel, ``.keras``, ONNX or LiteRT file."""

from __future__ import annotations

import argparse
import math

from blockbuilder.cli import positive_int
from blockbuilder.serving.export import FORMATS
from blockbuilder.serving.parity import MAX_SAMPLES

HELP = "export a trained model (SavedModel, .keras, ONNX, LiteRT) with its metadata"
TAKES_ARCH = False  # takes a trained model, not an architecture file
DOCS = "docs/export.md"
EXAMPLES = (
    "blockbuilder export runs/lenet5 -o exported/lenet5 --verify                     # a SavedModel, verified",
    "blockbuilder export runs/lenet5 --format onnx -o exported/lenet5.onnx --verify  # needs the onnx extra",
    "blockbuilder export runs/lenet5/model.keras --format litert -o exported/lenet5.tflite",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the export arguments (imports nothing heavy)."""
    parser.add_argument("model", metavar="MODEL_OR_RUN_DIR", help="a .keras file or a run directory")
    parser.add_argument("--format", "-f", choices=FORMATS, default="savedmodel", help="export format")
    parser.add_argument("-o", "--output", required=True, metavar="PATH", help="where to write the export")
    parser.add_argument("--verify", action="store_true", help="reload in a fresh process and compare outputs")
    parser.add_argument("--samples", type=samples, default=8,
                        help=f"random inputs for --verify (at most {MAX_SAMPLES:,})")
    parser.add_argument("--tolerance", type=tolerance, default=1e-4,
                        help="with --verify: the largest accepted absolute difference")
    parser.add_argument("--force", action="store_true", help="replace an existing output")


def samples(text: str) -> int:
    """An ``argparse`` type: a number of random inputs for ``--verify``, from 1 to ``MAX_SAMPLES``."""
    value = positive_int(text)
    if value > MAX_SAMPLES:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_SAMPLES:,} random inputs, got {value:,}")
    return value


def tolerance(text: str) -> float:
    """An ``argparse`` type: a finite difference of 0 or more (``nan`` or ``-1`` could never be met)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of 0 or more, got {text!r}")
    return value


def check(args: argparse.Namespace) -> None:
    """The model's files, the format's extras and the output, before TensorFlow is imported."""
    from blockbuilder.cli import arguments
    from blockbuilder.serving.export import check_export
    from blockbuilder.serving.source import inspect_source

    inspect_source(args.model)
    arguments.writable(check_export(args.format, args.output, force=args.force, verify=args.verify))


def run(args: argparse.Namespace) -> int:
    """Export, print where it went (and the parity figure with ``--verify``); 1 on a user error."""
    from blockbuilder.serving.export import export_model

    result = export_model(args.model, args.format, args.output, force=args.force, verify=args.verify,
                          samples=args.samples, tolerance=args.tolerance)
    print(f"exported {args.format} to {result.path}")
    if result.max_abs_diff is not None:
        print(
            f"verified in a fresh process: largest absolute difference {result.max_abs_diff:.3g} "
            f"over {result.samples} random inputs (tolerance {args.tolerance:g})"
        )
    return 0
