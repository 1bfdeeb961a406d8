"""``blockbuilder train ARCH``: train a model and fill its run directory.

The flags are defined with the standard library only (no pydantic, TensorFlow or Keras), so
``blockbuilder --help`` stays fast. Before TensorFlow is imported, the run is planned
(:func:`blockbuilder.training.api.plan`): a missing data set, a run directory that holds a run, a
``--resume`` with nothing to resume or with changed settings are reported at once.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from blockbuilder.cli import positive_int, weights
from blockbuilder.training.choices import DEVICES, PRECISIONS

HELP = "train a model (default: the embedded digits data set, offline)"

DOCS = "docs/training.md; docs/transfer.md for --weights and fine-tuning"
EXAMPLES = (
    "blockbuilder train lenet5                      # embedded digits, offline, about 30 s: runs/lenet5",
    "blockbuilder train resnet20_cifar --set train.dataset=tfds:cifar10 --epochs 200",
    "blockbuilder train resnet18 --set train.dataset=folder:photos --set classes=5 --output runs/photos",
    "blockbuilder train lenet5 --resume             # continue runs/lenet5 after Ctrl-C or a crash",
    "blockbuilder train lenet5 --export savedmodel  # export the best model at the end",
)


def _host_port(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return text


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the training flags (``arch``, ``--set`` and ``--debug`` come from the CLI)."""
    parser.add_argument("--epochs", type=positive_int, metavar="N", help="override train.epochs")
    parser.add_argument("--batch-size", type=positive_int, metavar="N", help="override train.batch_size")
    parser.add_argument("--output", "-o", metavar="DIR",
                        help="run directory (default runs/NAME, or runs/NAME-2 ... when taken)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where to train")
    parser.add_argument("--seed", type=int, help="override train.seed")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --output (default: the latest run of this architecture)")
    parser.add_argument("--precision", choices=PRECISIONS, help="override train.precision")
    parser.add_argument("--export", metavar="FORMAT", help="export the best model at the end (e.g. savedmodel)")
    weights.add_argument(parser)
    parser.add_argument("--coordinator", type=_host_port, metavar="HOST:PORT",
                        help="JAX multi-process: the coordinator's address")
    parser.add_argument("--num-processes", type=int, metavar="N", help="JAX multi-process: number of processes")
    parser.add_argument("--process-id", type=int, metavar="I", help="JAX multi-process: this process's index")


OVERRIDE_FLAGS = ("epochs", "batch_size", "seed", "precision")  # each is train.FLAG=VALUE
RESUMED_FLAGS = (*OVERRIDE_FLAGS, "export", "weights", "coordinator", "num_processes", "process_id")


def overrides(args: argparse.Namespace) -> list[str]:
    """The training flags as ``--set`` overrides (so ``resolved.yaml`` holds what was trained).

    ``blockbuilder.cli.main`` applies them after ``--set``, before its one load of the architecture.
    """
    values = {flag: getattr(args, flag) for flag in OVERRIDE_FLAGS}
    return [f"train.{flag}={value}" for flag, value in values.items() if value is not None]


def _resume_command(args: argparse.Namespace, run_dir: object) -> str:
    """The command line that continues this run: its own options, its run directory and ``--resume``."""
    words = ["blockbuilder", "train", args.arch]
    for override in args.overrides:
        words += ["--set", override]
    for flag in RESUMED_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            words += [f"--{flag.replace('_', '-')}", str(value)]
    for limit in args.limits:
        words += ["--limit", limit]
    if args.device != "auto":
        words += ["--device", args.device]
    return shlex.join([*words, "--output", str(run_dir), "--resume"])


def check(args: argparse.Namespace) -> None:
    """Plan the run before TensorFlow is imported: the data set's path, the run directory, ``--resume``."""
    from blockbuilder.serving.export import check_format
    from blockbuilder.training.api import TrainOptions, plan

    if args.export is not None:  # an unknown format or a missing extra, now and not after training
        check_format(args.export)

    args.train_options = TrainOptions(
        output=args.output, device=args.device, resume=args.resume, export=args.export,
        coordinator=args.coordinator, num_processes=args.num_processes, process_id=args.process_id,
    )
    args.plan = plan(args.architecture, args.train_options)  # loaded by main with overrides(args)


def run(args: argparse.Namespace) -> int:
    """Train as planned by :func:`check`; return 0, 1 when the loss became NaN, 130 when interrupted."""
    from blockbuilder.training.api import run_plan

    if not hasattr(args, "plan"):
        check(args)
    decided = args.plan
    try:
        run = run_plan(decided, args.train_options)
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.stderr.write(f"\ninterrupted; the completed epochs are saved in {decided.run_dir}. "
                         f"Continue with:\n  {_resume_command(args, decided.run_dir)}\n")
        return 130
    return 1 if run.metrics.get("stopped") == "nan" else 0
