"""Digits accuracy of the main job per Keras backend, over several seeds (mean, spread, difference).

One run's test accuracy on the 360 digits test images varies by about a point from seed to seed, on
any backend, so backends are compared on the mean over seeds. Each backend trains ``lenet5`` (the main
job, 20 epochs) once per seed in its own process, JAX and PyTorch with TensorFlow unimportable; two
backends run at a time. Prints a table and writes it as JSON with ``--json``.

    python bench/bench_accuracy.py [--seeds 0-6] [--precision float32] [--backends tensorflow,jax,torch]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WITHOUT_TENSORFLOW = REPO / "tools" / "without_tensorflow"  # its sitecustomize hides TensorFlow
CHILD = """
import json, sys
import blockbuilder
seeds, precision, out = [int(s) for s in sys.argv[1].split(",")], sys.argv[2], sys.argv[3]
for seed in seeds:
    run = blockbuilder.train("lenet5", output=f"{out}/seed-{seed}",
                             overrides={"train.seed": seed, "train.precision": precision})
    print("RESULT", json.dumps({"seed": seed, "accuracy": run.metrics["test"]["accuracy"],
                                "precision": run.metrics["precision"]}), flush=True)
"""


def _seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def measure(backend: str, seeds: list[int], precision: str, work: Path) -> list[dict[str, Any]]:
    """Train the main job once per seed on ``backend``; one process, TensorFlow hidden unless it is the backend."""
    folder = work / backend
    folder.mkdir(parents=True)
    paths = [str(REPO)] if backend == "tensorflow" else [str(WITHOUT_TENSORFLOW), str(REPO)]
    (folder / "child.py").write_text(CHILD)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run([sys.executable, str(folder / "child.py"), ",".join(map(str, seeds)), precision,
                           str(folder / "runs")], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{backend}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-6", help="e.g. 0-6 or 0,3,5 (default 0-6)")
    parser.add_argument("--precision", default="float32", help="train.precision (default float32)")
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if importlib.util.find_spec(b) is not None]
    seeds = _seeds(args.seeds)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        futures = {b: pool.submit(measure, b, seeds, args.precision, Path(tmp)) for b in backends}
        results = {b: f.result() for b, f in futures.items()}
    reference = statistics.mean(r["accuracy"] for r in results.get("tensorflow", results[backends[0]]))
    print(f"lenet5 on digits, 20 epochs, precision {args.precision}, seeds {args.seeds}")
    print("| backend | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std | mean - tensorflow |")
    print("|---|" + "---:|" * (len(seeds) + 3))
    for backend, rows in results.items():
        values = [100 * r["accuracy"] for r in rows]
        print(f"| {backend} | " + " | ".join(f"{v:.2f}" for v in values)
              + f" | {statistics.mean(values):.2f} | {statistics.stdev(values) if len(values) > 1 else 0:.2f}"
              + f" | {statistics.mean(values) - 100 * reference:+.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"seeds": seeds, "precision": args.precision, "results": results}, indent=2))


if __name__ == "__main__":
    main()
