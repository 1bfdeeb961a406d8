"""The prepared GPU check: ResNet-20 speed per backend, precision and compilation, and the digits job.

Runs each measurement in its own process (``bench/bench_backends.py --child``) and writes
``gpu_check.json`` and ``gpu_check.md`` (images/s, accuracy, peak memory) to ``$OUT`` (or
``./gpu-check/``). Meant to be started by ``bench/gpu_check.sh`` on a GPU machine, within 8 minutes:

* ``resnet20_cifar`` on synthetic CIFAR-shaped data, a fixed number of steps, on JAX and PyTorch
  (each when importable), with ``float32`` and ``precision: auto``, compiled (XLA / torch
  compilation as Keras offers it) and not;
* ``blockbuilder profile`` of ``resnet20_cifar`` and ``mobilenet_v2`` (per-block latency) per backend;
* ``blockbuilder train lenet5`` (the digits main job) on the GPU, per backend, with its test accuracy.

``--smoke`` is the same on CPU in a few seconds per measurement: float32 only, a few steps, one epoch of digits.

    python bench/gpu_check.py [--smoke] [--out DIR] [--budget-seconds 480]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_backends import run_child  # noqa: E402


def _gpu_name() -> str:
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                text=True, timeout=20)
        return ", ".join(line.strip() for line in result.stdout.splitlines() if line.strip()) or "none"
    except (OSError, subprocess.TimeoutExpired):
        return "none"


def _job(command: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str] | str:
    """Run one job of the check; its finished process, or why it has no result (one line)."""
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    if result.returncode:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"exit {result.returncode}: {tail[0]}"
    return result


def _digits(backend: str, device: str, epochs: int, out: Path, timeout: float) -> dict[str, Any]:
    run_dir = out / f"digits-{backend}"
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "blockbuilder", "train", "lenet5", "--device", device, "--output", str(run_dir),
               "--set", f"train.epochs={epochs}"]
    row: dict[str, Any] = {"job": "digits lenet5", "backend": backend, "epochs": epochs}
    result = _job(command, env, timeout)
    if isinstance(result, str):
        return {**row, "error": result}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {**row, "device": metrics["device"], "precision": metrics["precision"],
            "accuracy": round(metrics["test"]["accuracy"], 4), "images_per_second": metrics["images_per_second"],
            "seconds": metrics["train_seconds"]}


def _profile(backend: str, name: str, device: str, batch: int, timeout: float) -> dict[str, Any]:
    """``blockbuilder profile NAME`` on the device: the whole network's latency and its slowest block."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "blockbuilder", "profile", name, "--device", device, "--json",
               "--batch-size", str(batch), "--repeats", "5", "--precision", "float32"]
    row: dict[str, Any] = {"job": f"profile {name}", "backend": backend}
    result = _job(command, env, timeout)
    if isinstance(result, str):
        return {**row, "error": result}
    found = json.loads(result.stdout)
    slowest = max(found["blocks"], key=lambda block: block["ms"])
    return {**row, "device": device, "precision": found["precision"], "ms": found["ms"],
            "images_per_second": found["images_per_second"], "slowest_block": f"{slowest['path']} ({slowest['ms']} ms)"}


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| job | backend | device | precision | compiled | images/s | accuracy | peak memory (MiB) |",
             "|---|---|---|---|---|---:|---:|---:|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['job']} | {row['backend']} | error: {row['error']} | | | | | |")
            continue
        memory = f"{row['peak_memory_bytes'] / 2**20:.0f}" if "peak_memory_bytes" in row else "-"
        accuracy = f"{row['accuracy']:.4f}" if "accuracy" in row else "-"
        compiled = ("yes" if row["jit"] else "no") if "jit" in row else "-"
        lines.append(f"| {row['job']} | {row['backend']} | {row['device']} | {row['precision']} | {compiled} | "
                     f"{row['images_per_second']:.1f} | {accuracy} | {memory} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, float32 only, a few steps (minutes -> seconds)")
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu-check", help="results folder ($OUT)")
    parser.add_argument("--budget-seconds", type=float, default=480, help="stop starting work after this")
    parser.add_argument("--steps", type=int, default=None, help="timed ResNet-20 steps (60; smoke: 3)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    smoke = args.smoke
    device = "auto" if smoke else "gpu"
    steps = args.steps or (3 if smoke else 60)
    batch = 32 if smoke else 256
    backends = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is not None]
    settings = [("float32", True)] if smoke else [(p, j) for p in ("float32", "auto") for j in (True, False)]

    def left() -> float:
        return args.budget_seconds - (time.monotonic() - started)

    rows: list[dict[str, Any]] = []
    for backend in backends:
        for precision, jit in settings:
            if left() < 20:
                rows.append({"job": "resnet20_cifar", "backend": backend, "error": "skipped: out of time"})
                continue
            extra = ["--steps", str(steps), "--warmup", "2" if smoke else "5", "--batch-size", str(batch),
                     "--device", device, "--precision", precision]
            if not jit:
                extra.append("--no-jit")
            measured = run_child(backend, extra, timeout=max(10.0, min(left(), 150.0)))
            rows.append({"job": "resnet20_cifar", **measured})
            print(json.dumps(rows[-1]), flush=True)
    for backend in backends:
        for name in ("resnet20_cifar", "mobilenet_v2"):  # per-block latency on the device (profile)
            if left() < 30:
                rows.append({"job": f"profile {name}", "backend": backend, "error": "skipped: out of time"})
                continue
            rows.append(_profile(backend, name, device, 8 if smoke else 64, timeout=max(10.0, min(left(), 120.0))))
            print(json.dumps(rows[-1]), flush=True)
    for backend in backends:
        if left() < 20:
            rows.append({"job": "digits lenet5", "backend": backend, "error": "skipped: out of time"})
            continue
        rows.append(_digits(backend, device, 1 if smoke else 10, out, timeout=max(10.0, min(left(), 150.0))))
        print(json.dumps(rows[-1]), flush=True)

    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gpu": _gpu_name(), "python": platform.python_version(), "mode": "smoke" if smoke else "full",
        "resnet20": {"batch_size": batch, "timed_steps": steps}, "seconds": round(time.monotonic() - started, 1),
        "rows": rows,
    }
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    heading = (f"GPU check ({report['mode']}), {report['date']}, GPU: {report['gpu']}; ResNet-20 batch {batch}, "
               f"{steps} timed steps on synthetic 32x32x3 data\n\n")
    (out / "gpu_check.md").write_text(heading + _table(rows))
    print(heading + _table(rows))
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
