"""Training speed of ``blockbuilder train`` against a hand-written Keras ``fit``, side by side.

Both train the same model (built from the same YAML) on the same data (a synthetic ``.npz``), with
the same batch size, precision, validation set and no augmentation; each reports images per second
over the epochs after the first (which includes tracing). Prints the ratio; the target is >= 0.97.

    python bench/bench_train.py [--arch lenet5] [--images 20000] [--epochs 4] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}

BASELINE = r"""
import json, sys, time
import numpy as np, keras, tensorflow as tf
import blockbuilder

npz, arch_name, epochs, batch, precision = sys.argv[1:6]
keras.mixed_precision.set_global_policy(precision)
keras.utils.set_random_seed(0)
data = np.load(npz)
x, y = data["x"].astype("float32") / 255.0, data["y"].astype("int32")
x = tf.image.resize(x, blockbuilder.load(arch_name).input_shape[:2]).numpy() if x.shape[1:3] != blockbuilder.load(arch_name).input_shape[:2] else x
n_val = len(x) // 10
train = tf.data.Dataset.from_tensor_slices((x[n_val:], y[n_val:])).cache().shuffle(10000).batch(int(batch)).prefetch(-1)
val = tf.data.Dataset.from_tensor_slices((x[:n_val], y[:n_val])).batch(int(batch)).cache().prefetch(-1)
model = blockbuilder.build(blockbuilder.load(arch_name))
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])

class Timer(keras.callbacks.Callback):
    seconds = []
    def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): self.seconds.append(time.perf_counter() - self.t)

model.fit(train, validation_data=val, epochs=int(epochs), callbacks=[Timer()], verbose=0)
steps = int(np.ceil((len(x) - n_val) / int(batch)))
print(json.dumps([steps * int(batch) / s for s in Timer.seconds]))
"""


def make_data(path: Path, images: int, shape: tuple[int, int, int], classes: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.arange(images) % classes
    x = rng.integers(0, 64, (images, *shape), dtype=np.uint8)
    x += (y * (192 // classes)).astype(np.uint8)[:, None, None, None]  # learnable: brightness = class
    np.savez(path, x=x, y=y)


def blockbuilder_speed(npz: Path, args: argparse.Namespace, precision: str, out: Path) -> list[float]:
    command = [sys.executable, "-m", "blockbuilder", "train", args.arch, "--output", str(out),
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--precision", precision, "--set", f"train.dataset=npz:{npz}",
               "--set", "train.augmentation=[]"]
    subprocess.run(command, env=ENV, check=True, stdout=subprocess.DEVNULL)
    history = [line.split(",") for line in (out / "history.csv").read_text().splitlines()]
    column = history[0].index("images_per_second")
    return [float(row[column]) for row in history[1:]]


def baseline_speed(npz: Path, args: argparse.Namespace, precision: str) -> list[float]:
    command = [sys.executable, "-c", BASELINE, str(npz), args.arch, str(args.epochs),
               str(args.batch_size), precision]
    out = subprocess.run(command, env=ENV, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="lenet5")
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--rounds", type=int, default=2, help="alternate the two this many times")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import blockbuilder

    arch = blockbuilder.load(args.arch)
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        make_data(npz, args.images, arch.input_shape, arch.classes)
        ours, theirs = [], []
        for round_ in range(args.rounds):
            started = time.perf_counter()
            theirs += baseline_speed(npz, args, args.precision)[1:]
            ours += blockbuilder_speed(npz, args, args.precision, Path(tmp) / f"run{round_}")[1:]
            print(f"round {round_ + 1}: {time.perf_counter() - started:.0f}s", file=sys.stderr)
    mine, base = statistics.median(ours), statistics.median(theirs)
    print(f"{args.arch}, {args.images} images, batch {args.batch_size}, {args.precision}, "
          f"epochs 2..{args.epochs} x {args.rounds} rounds (median images/s)")
    print(f"  hand-written keras fit : {base:10,.0f} images/s")
    print(f"  blockbuilder train     : {mine:10,.0f} images/s")
    print(f"  ratio                  : {mine / base:10.3f}  (target >= 0.97)")


if __name__ == "__main__":
    main()
