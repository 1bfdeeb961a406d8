"""Latency predicted from the file against latency measured, over the zoo, on this machine.

    python bench/bench_profile.py [--batch-size 8] [--repeats 5] [--only resnet20_cifar,lenet5] [--calibrate]

For every zoo network: the whole model timed at its reference input (median of ``--repeats`` calls of
``predict_on_batch`` on random images, after warm-up), against the prediction of this machine's latency
table (``blockbuilder profile --calibrate``; made here first when there is none, or with
``--calibrate``). Prints one row per network (MACs, measured ms, predicted ms, error), the share within
±10 % and ±25 %, and, for the networks of at most 1 G MACs, how close ``blockbuilder profile``'s rows
(each block timed alone, less the fixed cost of the extra calls) come to the measured whole.
Inference in float32 on the current ``KERAS_BACKEND``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated zoo names (default: the whole zoo)")
    parser.add_argument("--calibrate", action="store_true", help="make this machine's table again first")
    args = parser.parse_args()

    import keras

    import blockbuilder
    from blockbuilder.language.resolve import zoo_names
    from blockbuilder.report import latency
    from blockbuilder.report.profile import Timer, profile

    backend = keras.backend.backend()
    key = latency.table_key(backend, "float32", "inference", args.batch_size)
    table = None if args.calibrate else latency.read_tables().get(key)
    if table is None:
        start = time.perf_counter()
        table = latency.calibrate(backend, "float32", "inference", args.batch_size)
        latency.write_table(table)
        print(f"calibrated {key} in {time.perf_counter() - start:.0f} s")
    names = [n for n in args.only.split(",") if n] or zoo_names()
    timer = Timer(args.batch_size, "inference", args.repeats, warmup=2)
    print(f"{'network':<22}{'MACs':>10}{'measured ms':>13}{'predicted ms':>14}{'error':>8}{'rows/whole':>12}")
    errors = []
    for name in names:
        arch = blockbuilder.load(name)
        model = blockbuilder.build(arch)
        measured = timer.time(model, tuple(arch.input_shape))
        predicted = table.predict(arch.root)
        macs = sum(n.block.macs(n) for n in arch.root.walk())
        ratio = ""
        if macs <= 1e9:
            parts = profile(arch, model, batch_size=args.batch_size, repeats=args.repeats)
            ratio = f"{parts.parts_ms / parts.ms:.2f}"
        error = predicted / measured - 1
        errors.append(error)
        print(f"{name:<22}{macs / 1e6:>9.1f}M{measured:>13.2f}{predicted:>14.2f}{error:>+8.0%}{ratio:>12}",
              flush=True)
        del model
        keras.backend.clear_session()
        gc.collect()
    within = [sum(abs(e) <= bound for e in errors) for bound in (0.10, 0.25)]
    print(f"\n{len(errors)} networks, batch {args.batch_size}, {backend}, float32 inference: "
          f"{within[0]} within ±10 %, {within[1]} within ±25 %; median |error| "
          f"{statistics.median(abs(e) for e in errors):.0%}")


if __name__ == "__main__":
    main()
