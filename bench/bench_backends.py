"""ResNet-20 (``resnet20_cifar``) training speed on each Keras backend, side by side.

Each backend trains in its own process on the same synthetic CIFAR-shaped data (random 32x32x3
images, 10 classes) with the model, optimizer and loss of ``blockbuilder train``, fed as
``blockbuilder train`` feeds it (:mod:`blockbuilder.training.pipeline` on every backend, handed to
TensorFlow through a ``tf.data`` map). The first steps (compilation) are not timed. Prints images/s of
each backend and its ratio to TensorFlow measured in the same run; backends that are not installed are skipped.

    python bench/bench_backends.py [--steps 20] [--batch-size 128] [--backends tensorflow,jax,torch]

``--child`` runs one measurement and prints it as JSON (bench/gpu_check.py uses it too):

    KERAS_BACKEND=jax python bench/bench_backends.py --child --device gpu --precision auto [--no-jit]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _peak_memory(backend: str, kind: str) -> int:
    """Peak bytes of the accelerator (GPU), or the process' peak resident memory on CPU."""
    if kind == "gpu" and backend == "jax":
        import jax

        return int(max(d.memory_stats().get("peak_bytes_in_use", 0) for d in jax.local_devices()))
    if kind == "gpu" and backend == "torch":
        import torch

        return int(torch.cuda.max_memory_allocated())
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Train ``args.steps`` timed steps after ``args.warmup`` untimed ones; return the measurement."""
    import keras
    import numpy as np

    import blockbuilder
    from blockbuilder.training.devices import place, resolve_precision
    from blockbuilder.training.optim import make_loss, make_metrics, make_optimizer

    backend = keras.backend.backend()
    placement = place(args.device)
    precision = resolve_precision(args.precision, placement.kind)
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    arch = blockbuilder.load(args.model)
    spec = arch.train
    steps = args.warmup + args.steps
    rng = np.random.default_rng(0)
    count = steps * args.batch_size
    x = rng.random((count, *arch.input_shape), dtype=np.float32)
    y = rng.integers(0, arch.classes, count).astype(np.int32)
    from blockbuilder.training import pipeline

    examples = pipeline.Examples(y, x, shape=arch.input_shape)
    data = pipeline.feed(pipeline.train_batches(examples, args.batch_size, seed=0, epoch=0, drop_remainder=True))
    with placement.scope():
        model = blockbuilder.build(arch)
        model.compile(optimizer=make_optimizer(spec, steps), loss=make_loss(spec), metrics=make_metrics(spec),
                      jit_compile=args.jit)

    times: list[float] = []

    class Clock(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            times.append(time.perf_counter())

    started = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[Clock()])
    timed = times[-1] - times[args.warmup - 1]
    return {
        "backend": backend, "device": placement.kind, "precision": precision, "jit": bool(args.jit),
        "batch_size": args.batch_size, "steps": args.steps,
        "images_per_second": round(args.steps * args.batch_size / timed, 1),
        "first_steps_seconds": round(times[args.warmup - 1] - started, 2),
        "peak_memory_bytes": _peak_memory(backend, placement.kind),
    }


def run_child(backend: str, extra: list[str], timeout: float = 600) -> dict[str, Any]:
    """Run one measurement in a fresh process; ``{"backend": ..., "error": ...}`` when it fails."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", *extra]
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"backend": backend, "error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"backend": backend, "error": f"exit {result.returncode}: {tail[0]}"}
    measured: dict[str, Any] = json.loads(lines[-1])
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps (default 3)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--model", default="resnet20_cifar")
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--no-jit", dest="jit", action="store_false", help="compile=False (eager) where offered")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    extra = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
             "--model", args.model, "--device", args.device, "--precision", args.precision]
    if not args.jit:
        extra.append("--no-jit")
    rows = []
    for backend in args.backends.split(","):
        if importlib.util.find_spec(backend) is None:
            print(f"{backend}: not installed, skipped")
            continue
        rows.append(run_child(backend, extra))
    reference = next((r["images_per_second"] for r in rows if r["backend"] == "tensorflow" and "error" not in r), None)
    print(f"\n{args.model}, batch {args.batch_size}, {args.steps} timed steps, precision {args.precision}\n")
    print(f"{'backend':<12}{'device':<8}{'precision':<16}{'images/s':>10}{'vs TF':>8}{'first steps s':>15}")
    for row in rows:
        if "error" in row:
            print(f"{row['backend']:<12}error: {row['error']}")
            continue
        ratio = f"{row['images_per_second'] / reference:.2f}x" if reference else "-"
        print(f"{row['backend']:<12}{row['device']:<8}{row['precision']:<16}{row['images_per_second']:>10.1f}"
              f"{ratio:>8}{row['first_steps_seconds']:>15.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
