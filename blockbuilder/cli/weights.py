"""``--weights SOURCE`` for ``build``, ``summary``, ``train`` and ``embed``: the same as ``weights:`` in the file.

The command line wins over the file: ``--weights X`` is the override ``weights={source: X}``, which
keeps the file's ``strict:``. A relative path on the command line is relative to the working folder.
Nothing here imports TensorFlow: the source is checked (:func:`check`) before Keras is imported.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

HELP = ("start from these weights (the command line wins over weights: in the file): imagenet, a .keras, "
        ".weights.h5 or legacy .h5 file, or a run directory")


def add_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--weights SOURCE``."""
    parser.add_argument("--weights", metavar="SOURCE", help=HELP)


def overrides(args: argparse.Namespace) -> list[str]:
    """``--weights X`` as a ``--set`` override (nothing without it)."""
    source = getattr(args, "weights", None)
    return [f"weights={json.dumps({'source': source})}"] if source else []


def check(args: argparse.Namespace) -> None:
    """The weights source exists and is of a known kind, before TensorFlow (a one-line error otherwise)."""
    from blockbuilder.transfer.weights import check_source

    check_source(args.architecture)


def build(architecture: Any, show: bool = True, shapes_only: bool = False) -> tuple[Any, Any]:
    """Build the model with its weights and freezing; print what was loaded (a table) when ``show``."""
    from blockbuilder.transfer import build as build_with_report

    model, report = build_with_report(architecture, shapes_only=shapes_only)
    if report is not None and show:
        print_report(report)
    return model, report


def print_report(report: Any) -> None:
    """The report's headline (one line, however long its paths), then its table."""
    from blockbuilder.cli.console import console

    console().print(report.headline(), soft_wrap=True, markup=False, highlight=False)
    console().print(report.render())
