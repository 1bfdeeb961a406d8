"""``blockbuilder train ARCH``: train a model and fill its run directory."""

from __future__ import annotations

import argparse

from blockbuilder.train_spec import configure_train_arguments

HELP = "train a model (default: the embedded digits data set, offline)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the training flags (``arch``, ``--set`` and ``--debug`` come from the CLI)."""
    configure_train_arguments(parser)


def _spec_overrides(args: argparse.Namespace) -> dict:
    return {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "precision": args.precision,
    }


def run(args: argparse.Namespace) -> int:
    """Train ``args.architecture``; return 0, or 1 with a one-line message on failure."""
    import sys

    from pydantic import ValidationError

    from blockbuilder.train import TrainError, TrainOptions, train

    options = TrainOptions(
        output=args.output, device=args.device, resume=args.resume, export=args.export,
        coordinator=args.coordinator, num_processes=args.num_processes, process_id=args.process_id,
    )
    try:
        result = train(args.architecture, _spec_overrides(args), options)
    except TrainError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        print(f"error: train.{where}: {problem['msg']}", file=sys.stderr)
        return 2
    return 1 if result.metrics.get("stopped") == "nan" else 0
