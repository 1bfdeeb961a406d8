"""``blockbuilder predict``: the top-k classes of image files, from an export or a trained model."""

from __future__ import annotations

import argparse

from blockbuilder.cli import positive_int

HELP = "classify images with an exported model, a .keras file or a run directory"
TAKES_ARCH = False  # takes a trained model, not an architecture file
NEEDS_KERAS = False  # ONNX and LiteRT files need no TensorFlow: run() imports it when the model does
DOCS = 'docs/export.md, "blockbuilder predict"'
EXAMPLES = (
    "blockbuilder predict exported/lenet5 digit.png another.png --top 3  # TensorFlow alone serves a SavedModel",
    "blockbuilder predict runs/lenet5 digit.png",
    "blockbuilder predict exported/lenet5.onnx digit.png                 # onnxruntime, no TensorFlow",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the predict arguments (imports nothing heavy)."""
    parser.add_argument(
        "model", metavar="EXPORT_OR_MODEL", help="a SavedModel directory, .keras/.onnx/.tflite file or run directory"
    )
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--top", type=positive_int, default=3,
                        help="how many classes to show per image")


def check(args: argparse.Namespace) -> None:
    """The model's kind and metadata, and every image's header, before TensorFlow is imported."""
    from blockbuilder.serving.predict import check_arguments

    args.needs_tensorflow = check_arguments(args.model, args.images)


def run(args: argparse.Namespace) -> int:
    """Print the top classes of each image; 1 on an unreadable model or image."""
    from blockbuilder.cli.console import import_keras_quietly
    from blockbuilder.serving.predict import predict, print_predictions

    if getattr(args, "needs_tensorflow", True) and not args.debug:
        import_keras_quietly("tensorflow")
    predictions = predict(args.model, args.images, top=args.top)
    print_predictions(predictions)
    return 0
