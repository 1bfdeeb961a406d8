"""``blockbuilder profile ARCH``: milliseconds per block on the device at hand, for inference or training."""

from __future__ import annotations

import argparse
import json
import sys

from blockbuilder.cli import positive_int
from blockbuilder.training.choices import DEVICES, PRECISIONS

HELP = "time each block and the whole network on this machine (inference or a training step)"

DOCS = 'docs/visualise.md, "profile"'
EXAMPLES = (
    "blockbuilder profile resnet20_cifar",
    "blockbuilder profile resnet20_cifar --mode train --batch-size 128 --precision float32",
    "blockbuilder profile mobilenet_v2 --depth 2 --plot mobilenet_v2-time.png",
    "blockbuilder profile lenet5 --json               # KERAS_BACKEND=jax or torch: on that backend",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the profile arguments."""
    parser.add_argument("--mode", choices=("inference", "train"), default="inference",
                        help="time the forward pass, or a whole training step (forward, backward, update)")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="images per call")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="dtype policy (auto: what train would choose here)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where to run")
    parser.add_argument("--repeats", type=positive_int, default=10, metavar="N",
                        help="timed calls per block; the median is shown")
    parser.add_argument("--warmup", type=positive_int, default=2, metavar="N", help="untimed calls first")
    parser.add_argument("--depth", type=positive_int, default=1, metavar="N",
                        help="time the blocks inside sequences (user-defined blocks) down to level N")
    parser.add_argument("--calibrate", action="store_true",
                        help="first time every block type on a grid of shapes and keep the fitted costs in the "
                             "cache, so validate, summary and zoo predict latency from the file (a minute or two)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", metavar="FILE.png", help="also draw the blocks' time as a bar chart")


def check(args: argparse.Namespace) -> None:
    """The picture's path, before TensorFlow."""
    from blockbuilder.cli import arguments

    if args.plot:
        arguments.suffix(args.plot, (".png",))
        arguments.writable(args.plot)


def run(args: argparse.Namespace) -> int:
    """Build, time, print."""
    import keras

    from blockbuilder.cli.console import console
    from blockbuilder.compiler.compile import build_model
    from blockbuilder.report import latency
    from blockbuilder.report.profile import plot, profile, render
    from blockbuilder.training.devices import place, resolve_precision

    arch = args.architecture
    placement = place(args.device)
    precision = resolve_precision(args.precision, placement.kind, arch, args.batch_size)
    keras.config.set_dtype_policy(precision)
    backend = keras.backend.backend()
    shown = sys.stderr.isatty() and not args.json

    def progress(path: str) -> None:
        if shown:
            sys.stderr.write(f"\rtiming {path} ...\033[K")
            sys.stderr.flush()

    with placement.scope():
        if args.calibrate:
            made = latency.calibrate(backend, precision, args.mode, args.batch_size, progress=progress)
            where = latency.write_table(made)
            if not args.json:
                print(f"calibrated {latency.describe(made)} on this machine -> {where}")
        model = build_model(arch.root, arch.name, tuple(arch.input_shape), arch.input_name)

        result = profile(arch, model, batch_size=args.batch_size, mode=args.mode, repeats=args.repeats,
                         warmup=args.warmup, depth=args.depth, precision=precision, progress=progress)
        if shown:
            sys.stderr.write("\r\033[K")
    table = latency.read_tables().get(latency.table_key(backend, precision, args.mode, args.batch_size))
    result.predicted_ms = table.predict(arch.root) if table is not None else None
    if args.plot:
        plot(result, args.plot)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        console().print(render(result))
        if args.plot:
            print(f"wrote {args.plot}")
    return 0
