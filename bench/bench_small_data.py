"""Test accuracy of a small BatchNorm CNN on a small own-images folder, over seeds, defaults vs ``--try``.

The data set is made here, deterministically (NumPy + Pillow), as a ``folder:`` of PNG files: 3
classes (oriented stripes, blobs, checkerboards) x ``--per-class`` images of ``--size`` pixels, each a
patch of the class's texture at a random place, scale, angle and pair of colours, on a noisy
background of another colour, with pixel noise. The network is 3 conv blocks with ``norm: batchnorm``
(``defaults:``), a global average pool and a softmax. Each run is ``blockbuilder.train(...)`` in a
fresh process (bounded memory, nothing shared between runs); every configuration runs the same
seeds. ``--arch lenet5`` measures a zoo network on its own data set (the embedded digits) instead.

    python bench/bench_small_data.py [--seeds 3] [--epochs 10] \
        [--try "train.optimizer.learning_rate=0.003" --try "train.batch_size=16;train.epochs=10"]

A ``--try`` is one configuration: ``KEY=VALUE`` overrides (``--set`` paths, YAML values) joined by ``;``.
``--try "train.batch_size=32;train.optimizer.learning_rate=0.001"`` is the defaults before the
small-data defaults (a written batch size or optimizer switches them off).

Printed: each run's command, batch and scores, then one table row per configuration: the test
accuracy of the run (its 60 held-out test images: one image is 1.7 points) and, less noisy, the
accuracy of the same kept model on ``--holdout`` more images of each class, drawn with another seed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("stripes", "blobs", "checkers")
CONTRAST = 0.6  # the least distance of a texture's two colours

ARCHITECTURE = """\
name: small_bn_net
input: [{size}, {size}, 3]
classes: 3
defaults:
  conv: {{norm: batchnorm, activation: relu, use_bias: false}}
network:
  - conv: 16
  - max_pool: 2
  - conv: 32
  - max_pool: 2
  - conv: 64
  - global_avg_pool
  - dense: {{units: $classes, activation: softmax}}
train:
  dataset: folder:{folder}
  epochs: {epochs}
"""

#: One run in a fresh process: train, score the kept model on the hold-out images, print one JSON line.
ONE_RUN = r"""
import json, sys
import numpy as np
import blockbuilder

arch, output, overrides, holdout, trace = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
scored, hooks = [], {}
if holdout:
    with np.load(holdout) as arrays:
        x, y = arrays["x"].astype(np.float32) / 255.0, arrays["y"]


def accuracy(model):
    return float(np.mean(np.argmax(model.predict(x, batch_size=256, verbose=0), axis=1) == y))


if holdout and trace == "1":  # the model after each epoch (recalibrated), as it would be kept
    import keras

    grab = keras.callbacks.Callback()  # fit sets its .model

    def on_epoch_end(epoch, logs):
        scored.append(accuracy(grab.model))
        return False

    hooks = {"callbacks": [grab], "on_epoch_end": on_epoch_end}
run = blockbuilder.train(arch, output=output, overrides=overrides, live=False, **hooks)
last = run.history[-1]
print("RESULT " + json.dumps({
    "test_accuracy": run.metrics["test"]["accuracy"], "holdout_accuracy": accuracy(run.model) if holdout else None,
    "best_epoch": run.metrics["best_epoch"], "train_accuracy": last.get("accuracy"),
    "examples": run.metrics["examples"], "seconds": run.metrics.get("train_seconds"), "holdout_by_epoch": scored}))
"""


# --------------------------------------------------------------------------- the data set


def _texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` x ``size`` pattern in [0, 1] of the class ``kind``, at a random scale and angle.

    Lengths are in pixels of a 32-pixel image, scaled to ``size``.
    """
    scale = size / 32
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    u = xs * math.cos(angle) + ys * math.sin(angle)
    v = -xs * math.sin(angle) + ys * math.cos(angle)
    phase = rng.uniform(0, 2 * math.pi, 2)
    if kind == "stripes":
        return np.asarray(0.5 + 0.5 * np.sin(2 * math.pi * u / (rng.uniform(5, 8) * scale) + phase[0]))
    if kind == "checkers":
        period = rng.uniform(8, 12) * scale
        waves = np.sin(2 * math.pi * u / period + phase[0]) * np.sin(2 * math.pi * v / period + phase[1])
        return np.asarray(0.5 + 0.5 * np.sign(waves))
    pattern = np.zeros((size, size), np.float32)
    for _ in range(int(rng.integers(3, 7))):
        cx, cy = rng.uniform(0, size, 2)
        radius = rng.uniform(2.0, 3.5) * scale
        pattern += np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius**2))
    return np.asarray(np.clip(pattern, 0.0, 1.0))


def _mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged random ellipse covering roughly a quarter to three quarters of the image."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    rx, ry = rng.uniform(0.3, 0.5, 2) * size
    cx, cy = rng.uniform(0.3, 0.7, 2) * size
    distance = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2
    return np.asarray(np.clip((1.2 - distance) / 0.4, 0.0, 1.0))


def _colours(rng: np.random.Generator) -> np.ndarray:
    """Three random RGB colours, the texture's two at least ``CONTRAST`` apart (Euclidean)."""
    while True:
        colours = rng.uniform(0, 1, (3, 3)).astype(np.float32)
        if np.linalg.norm(colours[0] - colours[1]) >= CONTRAST:
            return colours


def make_image(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One RGB uint8 image of class ``kind``: texture in two colours on a noisy background."""
    low, high, background = _colours(rng)
    texture = _texture(kind, size, rng)[..., None]
    patch = low + (high - low) * texture
    ground = background + rng.normal(0, 0.08, (size, size, 3))
    mask = _mask(size, rng)[..., None]
    image = mask * patch + (1 - mask) * ground + rng.normal(0, rng.uniform(0.02, 0.08), (size, size, 3))
    return np.asarray(np.clip(image, 0, 1) * 255, np.uint8)


def make_images(per_class: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of each class (uint8 ``N x size x size x 3``) and their labels, which index the
    class names sorted (the order of a ``folder:`` data set's classes)."""
    rng = np.random.default_rng(seed)
    names = sorted(CLASSES)
    images = [make_image(kind, size, rng) for kind in CLASSES for _ in range(per_class)]
    labels = [names.index(kind) for kind in CLASSES for _ in range(per_class)]
    return np.stack(images), np.array(labels)


def make_folder(root: Path, per_class: int, size: int, seed: int = 0) -> Path:
    """``root/CLASS/NNN.png`` for each class; the same images for the same arguments."""
    from PIL import Image

    images, labels = make_images(per_class, size, seed)
    names = sorted(CLASSES)
    for index, (image, label) in enumerate(zip(images, labels)):
        (root / names[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / names[label] / f"{index % per_class:03d}.png")
    return root


# --------------------------------------------------------------------------- the runs


def parse_try(text: str) -> dict[str, Any]:
    """``"a.b=1;c=[flip]"`` -> ``{"a.b": 1, "c": ["flip"]}`` (values read as YAML)."""
    overrides: dict[str, Any] = {}
    for pair in filter(None, (part.strip() for part in text.split(";"))):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--try: expected KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def one_run(arch: str, output: Path, overrides: dict[str, Any], holdout: str, trace: bool) -> dict[str, Any]:
    """``blockbuilder.train`` in a fresh process; its test and hold-out accuracy."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-c", ONE_RUN, arch, str(output), json.dumps(overrides), holdout, str(int(trace))]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
    started = re.search(r"^training .*, batch (\d+), ", done.stdout, re.MULTILINE)  # the run's first line
    result["batch"] = int(started.group(1)) if started else None
    result["learning_rate"] = next(iter(re.findall(r"learning rate ([\d.e-]+)", done.stdout)), None)
    return result


def cli_command(arch: str, overrides: dict[str, Any]) -> str:
    sets = " ".join(f"--set {shlex.quote(f'{key}={json.dumps(value)}')}" for key, value in overrides.items())
    return f"blockbuilder train {arch} {sets}".rstrip()


def _mean_min_max(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} | {min(values):.3f} | {max(values):.3f}"


def summary_row(name: str, results: list[dict[str, Any]]) -> str:
    """One table row: test accuracy (mean, min, max, each seed), hold-out accuracy, kept epochs."""
    tests = [float(r["test_accuracy"]) for r in results]
    holdouts = [float(r["holdout_accuracy"]) for r in results if r["holdout_accuracy"] is not None]
    each = " ".join(f"{a:.3f}" for a in tests)
    held = _mean_min_max(holdouts) if holdouts else "- | - | -"
    best = ",".join(str(r["best_epoch"]) for r in results)
    return f"| {name} | {_mean_min_max(tests)} | {each} | {held} | {best} |"


def run_line(result: dict[str, Any]) -> str:
    chosen = f", learning rate {result['learning_rate']} (small-data defaults)" if result["learning_rate"] else ""
    line = (f"    batch {result['batch']}{chosen}: test accuracy {result['test_accuracy']:.4f}, "
            f"kept epoch {result['best_epoch']}, "
            f"last epoch's train accuracy {result['train_accuracy']:.3f}, {result['examples']}")
    if result["holdout_accuracy"] is not None:
        line += f", hold-out accuracy {result['holdout_accuracy']:.4f}"
    if result["holdout_by_epoch"]:
        line += f", hold-out by epoch {' '.join(f'{a:.3f}' for a in result['holdout_by_epoch'])}"
    return line


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1, each configuration")
    parser.add_argument("--epochs", type=int, default=10, help="train.epochs of the generated net")
    parser.add_argument("--per-class", type=int, default=100, help="images of each class in the data set")
    parser.add_argument("--holdout", type=int, default=300,
                        help="more images of each class (another seed), to score the kept model; 0: none")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--arch", default=None, help="a zoo name or file instead (its own train: section)")
    parser.add_argument("--try", dest="tries", action="append", default=[], metavar="KEY=VALUE[;KEY=VALUE]")
    parser.add_argument("--no-defaults", action="store_true", help="only the --try configurations")
    parser.add_argument("--precision", default="float32",
                        help="train.precision of every run (default float32, the CPU default; 'auto' probes)")
    parser.add_argument("--trace", action="store_true", help="also the hold-out accuracy after every epoch")
    parser.add_argument("--json", action="store_true", help="also every run as one JSON line")
    return parser.parse_args()


def prepare(args: argparse.Namespace, root: Path) -> tuple[str, str]:
    """The architecture to train and the hold-out ``.npz`` ("" for none): made here unless ``--arch``."""
    if args.arch is not None:
        return args.arch, ""
    folder = make_folder(root / "images", args.per_class, args.size)
    arch = root / "small_bn_net.yaml"
    arch.write_text(ARCHITECTURE.format(size=args.size, folder=folder, epochs=args.epochs))
    print(f"data: {len(CLASSES)} classes x {args.per_class} PNG images, {args.size}x{args.size} RGB "
          f"({', '.join(CLASSES)}); hold-out: {args.holdout} more of each; network:\n"
          + textwrap.indent(arch.read_text(), "    "))
    holdout = ""
    if args.holdout:
        x, y = make_images(args.holdout, args.size, seed=1)
        holdout = str(root / "holdout.npz")
        np.savez(holdout, x=x, y=y)
    return str(arch), holdout


def main() -> None:
    args = arguments()
    configurations: list[tuple[str, dict[str, Any]]] = [("defaults", {})] if not args.no_defaults else []
    configurations += [(text, parse_try(text)) for text in args.tries]
    print("command: python bench/bench_small_data.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    rows: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_small_data_") as scratch:
        arch, holdout = prepare(args, Path(scratch))
        shown = Path(arch).name if args.arch is None else arch
        for name, overrides in configurations:
            results = []
            for seed in range(args.seeds):
                settings = {"train.precision": args.precision, **overrides, "train.seed": seed}
                print(f"  {cli_command(shown, settings)}", flush=True)
                result = one_run(arch, Path(scratch) / "runs" / f"{len(rows)}-{seed}", settings, holdout, args.trace)
                print(run_line(result), flush=True)
                if args.json:
                    print("JSON " + json.dumps({"configuration": name, "seed": seed, **result}))
                results.append(result)
            rows.append(summary_row(name, results))
    print(f"\n{args.seeds} seeds each, {time.perf_counter() - started:.0f} s in all, TensorFlow backend on CPU, "
          f"precision {args.precision}")
    print("| configuration | test acc mean | min | max | per seed | hold-out acc mean | min | max | kept epochs |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
