"""``blockbuilder train ARCH``: train a model and fill its run directory.

The flags are defined here with the standard library only (no pydantic, TensorFlow or Keras), so
``blockbuilder --help`` stays fast; their values are checked by ``TrainSpec`` when training starts.
"""

from __future__ import annotations

import argparse

HELP = "train a model (default: the embedded digits data set, offline)"

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16", "bfloat16")  # = TrainSpec's (tested)
DEVICES = ("auto", "cpu", "gpu", "tpu")


def _host_port(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return text


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the training flags (``arch``, ``--set`` and ``--debug`` come from the CLI)."""
    parser.add_argument("--epochs", type=int, metavar="N", help="override train.epochs")
    parser.add_argument("--batch-size", type=int, metavar="N", help="override train.batch_size")
    parser.add_argument("--output", "-o", metavar="DIR", help="run directory (default runs/<name>)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where to train")
    parser.add_argument("--seed", type=int, help="override train.seed")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run directory's last checkpoint")
    parser.add_argument("--precision", choices=PRECISIONS, help="override train.precision")
    parser.add_argument("--export", metavar="FORMAT",
                        help="export the best model at the end (e.g. savedmodel)")
    parser.add_argument("--coordinator", type=_host_port, metavar="HOST:PORT",
                        help="JAX multi-process: the coordinator's address")
    parser.add_argument("--num-processes", type=int, metavar="N",
                        help="JAX multi-process: number of processes")
    parser.add_argument("--process-id", type=int, metavar="I",
                        help="JAX multi-process: this process's index")


def _spec_overrides(args: argparse.Namespace) -> dict:
    return {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "precision": args.precision,
    }


def run(args: argparse.Namespace) -> int:
    """Train ``args.architecture``; return 0, or 1 when the loss became NaN.

    A ``TrainError`` (a ``CommandError``) is printed by the CLI in one line with exit code 1; a
    flag value that the ``train:`` section rejects is a ``UsageError`` (exit code 2).
    """
    from pydantic import ValidationError

    from blockbuilder.errors import UsageError
    from blockbuilder.training.loop import TrainOptions, train

    options = TrainOptions(
        output=args.output, device=args.device, resume=args.resume, export=args.export,
        coordinator=args.coordinator, num_processes=args.num_processes, process_id=args.process_id,
    )
    try:
        result = train(args.architecture, _spec_overrides(args), options)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise UsageError(f"train.{where}: {problem['msg']}") from None
    return 1 if result.metrics.get("stopped") == "nan" else 0
