"""Latency predicted from the file against latency measured, network by network, calibrated in the same run.

    python bench/bench_latency.py [--batch-size 8] [--repeats 5] [--only lenet5,resnet20_cifar | --all]
                                  [--json results.json] [--table table.json]

Calibrates this machine's table (every registered block type on the grid of
``blockbuilder.report.latency.SHAPES``; the time it took is printed) and times every network three
times, interleaved with the calibration (one network after every few calibrated blocks, the list forward,
backward, forward), so a load that changes during the run weighs on both alike, and shows as the spread of
a network's three timings (the ``noise`` column: (slowest - fastest) / median). The measured figure is
their median. Each
row: MACs, measured ms, predicted ms from the nearest calibrated shapes (what ``validate`` and
``summary`` show), and for comparison the prediction of the table's per-type straight-line fit alone
(the first version's method). Inference, float32, the current ``KERAS_BACKEND``; the table is not
written to the user's cache (``--table`` writes it elsewhere).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: Networks of different families, small inputs first (``--all``: the whole zoo).
SUBSET = ("lenet5", "harley_mnist", "resnet20_cifar", "resnet56_cifar", "densenet_bc100_k12", "fractalnet20",
          "squeezenet1_1", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "mobilenet_v3_small", "mobilenet_v2",
          "mobilenet_v1", "regnet_x_400mf", "resnet18", "resnet50", "efficientnet_b0", "googlenet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated zoo names (default: a subset of families)")
    parser.add_argument("--all", action="store_true", help="every zoo network")
    parser.add_argument("--json", type=Path, help="write the table of results here")
    parser.add_argument("--table", type=Path, help="also write the calibrated latency table here")
    args = parser.parse_args()

    import keras

    import blockbuilder
    from blockbuilder.language.resolve import zoo_names
    from blockbuilder.report import latency
    from blockbuilder.report.profile import Timer

    backend = keras.backend.backend()
    names = zoo_names() if args.all else [n for n in args.only.split(",") if n] or list(SUBSET)
    timer = Timer(args.batch_size, "inference", args.repeats, warmup=2)
    timings: dict[str, list[float]] = {name: [] for name in names}
    queue = [*names, *reversed(names), *names]
    every = max(len(latency.SHAPES) * 40 // len(queue), 1)  # about 40 blocks a shape: spread over the run
    calibration = {"blocks": 0, "s": 0.0}

    def measure(name: str) -> None:
        arch = blockbuilder.load(name)
        model = blockbuilder.build(arch)
        timings[name].append(timer.time(model, tuple(arch.input_shape)))
        del model
        gc.collect()

    def between(_: str) -> None:
        calibration["blocks"] += 1
        if queue and calibration["blocks"] % every == 0:
            paused = time.perf_counter()
            measure(queue.pop(0))
            calibration["s"] -= time.perf_counter() - paused

    start = time.perf_counter()
    table = latency.calibrate(backend, "float32", "inference", args.batch_size, repeats=args.repeats,
                              progress=between)
    calibration_s = time.perf_counter() - start + calibration["s"]
    while queue:
        measure(queue.pop(0))
    if args.table:
        args.table.write_text(json.dumps({table.key: table.to_dict()}))
    samples = sum(len(rows) for rows in table.samples.values())
    print(f"calibrated {len(table.samples)} kinds of block, {samples} blocks, in {calibration_s:.0f} s", flush=True)
    linear = latency.LatencyTable(key=table.key, batch_size=table.batch_size, overhead_ms=table.overhead_ms,
                                  coefficients=table.coefficients, general=table.general, made=table.made)
    print(f"{'network':<22}{'MACs':>10}{'measured':>10}{'noise':>7}{'predicted':>11}{'error':>7}"
          f"{'linear fit':>12}{'error':>7}")
    rows: list[dict[str, Any]] = []
    for name in names:
        root = blockbuilder.load(name).root
        macs = sum(n.block.macs(n) for n in root.walk())
        measured = statistics.median(timings[name])
        predicted, straight = table.predict(root), linear.predict(root)
        row = {"network": name, "macs": macs, "measured_ms": round(measured, 3),
               "noise": round((max(timings[name]) - min(timings[name])) / measured, 3),
               "predicted_ms": round(predicted, 3),
               "error": round(predicted / measured - 1, 3), "linear_ms": round(straight, 3),
               "linear_error": round(straight / measured - 1, 3)}
        rows.append(row)
        print(f"{name:<22}{macs / 1e6:>9.1f}M{measured:>10.2f}{row['noise']:>7.0%}{predicted:>11.2f}"
              f"{row['error']:>+7.0%}{straight:>12.2f}{row['linear_error']:>+7.0%}")
    summary = {}
    for column in ("error", "linear_error"):
        errors = [abs(row[column]) for row in rows]
        summary[column] = {"within_10": sum(e <= 0.10 for e in errors), "within_25": sum(e <= 0.25 for e in errors),
                           "median": round(statistics.median(errors), 3)}
    noise = statistics.median(abs(row["noise"]) for row in rows)
    print(f"\n{len(rows)} networks, batch {args.batch_size}, {backend}, float32 inference, calibration "
          f"{calibration_s:.0f} s; median spread of a network's three timings {noise:.0%}")
    for column, label in (("error", "nearest shapes"), ("linear_error", "linear fit")):
        s = summary[column]
        print(f"{label:>15}: {s['within_10']} of {len(rows)} within ±10 %, {s['within_25']} within ±25 %, "
              f"median |error| {s['median']:.0%}")
    if args.json:
        args.json.write_text(json.dumps({"batch_size": args.batch_size, "backend": backend,
                                         "calibration_s": round(calibration_s, 1), "noise": noise,
                                         "summary": summary, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
