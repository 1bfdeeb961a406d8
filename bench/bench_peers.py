"""ResNet-20 training speed: ``blockbuilder train`` against the best hand-written peers, in one run.

    python bench/bench_peers.py [--images 6400] [--epochs 3] [--batch-size 128] [--rounds 2]

The same network (ResNet-20, CIFAR option A, 32x32x3, 10 classes), the same synthetic data (an
``.npz`` of uint8 images) and the same work: blockbuilder's split of it (72 % train, 8 % validation,
20 % test), every epoch's training steps on the training images, validation after each epoch, the
test images once at the end; same batch size and optimiser (Adam 1e-3), no augmentation. Each
contender runs in a fresh process, in alternating rounds (other work on the machine only slows a
round down, so the best round counts):

* ``blockbuilder train resnet20_cifar`` (through :func:`blockbuilder.train`, which the command line
  calls) with ``precision: auto`` (what a user gets), ``float32`` and ``mixed_bfloat16``;
* hand-written Keras: ``model.fit`` on an in-memory ``tf.data`` pipeline, float32, and
  ``jit_compile=True`` (XLA);
* hand-written PyTorch (when ``import torch`` works): the same ResNet-20 as an ``nn.Module``,
  channels-last, float32, and bfloat16 autocast where the CPU has AVX512-BF16 or AMX.

Three numbers per contender: **steps** images/s (the training steps of the epochs after the first,
which includes tracing: what the kernels and the framework's step cost), **epoch** images/s (training
images over the whole epoch: steps, validation and, for blockbuilder, BatchNorm re-estimation and the
commit of the epoch) and the **wall** seconds of the whole process (imports, data, building, every
epoch, the test). blockbuilder's ratio to the fastest peer is printed for each (the goal: >= 0.9). The
``auto`` precision probe is timed once, alone, before the rounds (a user pays it once per network,
batch and CPU; it is cached).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
       "TF_CPP_MIN_LOG_LEVEL": "3"}

KERAS_PEER = r"""
import json, sys, time
import numpy as np, keras, tensorflow as tf
from keras import layers

npz, epochs, batch, jit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
keras.utils.set_random_seed(0)
data = np.load(npz)
x, y = data["x"].astype("float32") / 255.0, data["y"].astype("int32")
n_train, n_val = int(sys.argv[5]), int(sys.argv[6])
(x, xv, xt), (y, yv, yt) = np.split(x, [n_train, n_train + n_val]), np.split(y, [n_train, n_train + n_val])

def conv(x, filters, stride=1, act=True):
    x = layers.Conv2D(filters, 3, stride, padding="same", use_bias=False, kernel_initializer="he_normal")(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x) if act else x

def unit(x, filters, stride):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:  # option A: subsample, zero channels
        pad = filters - x.shape[-1]
        shortcut = layers.Lambda(lambda t: tf.pad(t[:, ::2, ::2], [[0, 0], [0, 0], [0, 0], [0, pad]]))(x)
    x = conv(conv(x, filters, stride), filters, act=False)
    return layers.ReLU()(layers.Add()([shortcut, x]))

inputs = keras.Input((32, 32, 3))
h = conv(inputs, 16)
for filters, stride in ((16, 1), (32, 2), (64, 2)):
    for i in range(3):
        h = unit(h, filters, stride if i == 0 else 1)
outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(h))
model = keras.Model(inputs, outputs)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"], jit_compile=jit)
train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).batch(batch, drop_remainder=True).prefetch(-1)
val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(batch).prefetch(-1)

class Timer(keras.callbacks.Callback):
    steps, epochs = [], []
    def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
    def on_train_batch_end(self, batch, logs=None): self.last = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None):
        self.steps.append(self.last - self.t)
        self.epochs.append(time.perf_counter() - self.t)

model.fit(train, epochs=epochs, validation_data=val, callbacks=[Timer()], verbose=0)
model.evaluate(xt, yt, batch_size=batch, verbose=0)
images = len(x) // batch * batch
print(json.dumps({"steps": [images / s for s in Timer.steps], "epochs": [images / s for s in Timer.epochs]}))
"""

TORCH_PEER = r"""
import json, sys, time
import numpy as np, torch
from torch import nn
import torch.nn.functional as F

npz, epochs, batch, bf16 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
torch.manual_seed(0)
data = np.load(npz)
x = torch.from_numpy(data["x"]).permute(0, 3, 1, 2).float().div(255).contiguous(memory_format=torch.channels_last)
y = torch.from_numpy(data["y"]).long()
n_train, n_val = int(sys.argv[5]), int(sys.argv[6])
(x, xv, xt), (y, yv, yt) = torch.split(x, [n_train, n_val, len(x) - n_train - n_val]), \
    torch.split(y, [n_train, n_val, len(y) - n_train - n_val])

class Unit(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin
    def forward(self, x):
        s = x[:, :, ::2, ::2] if self.stride != 1 else x
        if self.pad:
            s = F.pad(s, (0, 0, 0, 0, 0, self.pad))
        h = F.relu(self.b1(self.c1(x)))
        return F.relu(s + self.b2(self.c2(h)))

class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        units, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                units.append(Unit(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.units, self.fc = nn.Sequential(*units), nn.Linear(64, 10)
    def forward(self, x):
        return self.fc(self.units(self.stem(x)).mean((2, 3)))

model = ResNet20().to(memory_format=torch.channels_last)
optimizer = torch.optim.Adam(model.parameters(), 1e-3)

def evaluate(images, labels):
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, len(images), batch):
            F.cross_entropy(model(images[i:i + batch]).float(), labels[i:i + batch])
    model.train()

steps, whole = [], []
images = len(x) // batch * batch
for epoch in range(epochs):
    start = time.perf_counter()
    order = torch.randperm(len(x))
    for i in range(0, images, batch):
        idx = order[i:i + batch]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    steps.append(time.perf_counter() - start)
    evaluate(xv, yv)
    whole.append(time.perf_counter() - start)
evaluate(xt, yt)
print(json.dumps({"steps": [images / s for s in steps], "epochs": [images / s for s in whole]}))
"""

BLOCKBUILDER = r"""
import json, sys, time
import keras, blockbuilder

npz, epochs, batch, precision, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]

class Timer(keras.callbacks.Callback):  # passed to every epoch's fit: the training steps only
    steps = []
    def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
    def on_train_batch_end(self, batch, logs=None): self.last = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): self.steps.append(self.last - self.t)

run = blockbuilder.train("resnet20_cifar", output=out, epochs=epochs, callbacks=[Timer()], live=False,
                         overrides={"train.dataset": f"npz:{npz}", "train.augmentation": [],
                                    "train.batch_size": batch, "train.precision": precision})
images = run.metrics["examples"]["train"] // batch * batch
print(json.dumps({"steps": [images / s for s in Timer.steps],
                  "epochs": [row["images_per_second"] for row in run.history],
                  "precision": run.metrics["precision"], "sizes": run.metrics["examples"]}))
"""


def make_data(path: Path, images: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.arange(images) % 10
    x = rng.integers(0, 64, (images, 32, 32, 3), dtype=np.uint8) + (y * 19).astype(np.uint8)[:, None, None, None]
    np.savez(path, x=x, y=y)


def _child(command: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """The child's last line (JSON) and its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds


def probe_seconds(batch: int, env: dict[str, str]) -> tuple[float, str]:
    """The ``auto`` precision probe, timed alone (it fills ``env``'s fresh cache for the rounds)."""
    code = ("import sys, time, blockbuilder; from blockbuilder.training.devices import cpu_precision; "
            "arch = blockbuilder.load('resnet20_cifar'); start = time.perf_counter(); "
            "choice = cpu_precision(arch, int(sys.argv[1])); print(time.perf_counter() - start, choice)")
    done = subprocess.run([sys.executable, "-c", code, str(batch)], env=env, capture_output=True, text=True,
                          check=True)
    seconds, choice = done.stdout.split()[-2:]
    return float(seconds), choice


def _has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated substrings: run only those contenders")
    args = parser.parse_args()
    torch_ok = subprocess.run([sys.executable, "-c", "import torch"], env=ENV, capture_output=True).returncode == 0
    contenders: dict[str, tuple[str, str]] = {
        "blockbuilder train, precision auto": ("bb", "auto"),
        "blockbuilder train, float32": ("bb", "float32"),
        "blockbuilder train, mixed_bfloat16": ("bb", "mixed_bfloat16"),
        "hand-written Keras fit, float32": ("keras", "0"),
        "hand-written Keras fit, float32, XLA": ("keras", "1"),
    }
    if torch_ok:
        contenders["hand-written PyTorch, float32, channels-last"] = ("torch", "0")
        if _has_bf16():
            contenders["hand-written PyTorch, bfloat16 autocast, channels-last"] = ("torch", "1")
    if args.only:
        contenders = {k: v for k, v in contenders.items() if any(w in k for w in args.only.split(","))}
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**ENV, "BLOCKBUILDER_CACHE": str(Path(tmp) / "cache")}  # a fresh probe, timed alone
        npz = Path(tmp) / "data.npz"
        make_data(npz, args.images)
        # blockbuilder's split (a blockbuilder contender runs first and reports its own)
        sizes = {"train": args.images * 18 // 25, "validation": args.images * 2 // 25}
        sizes["test"] = args.images - sizes["train"] - sizes["validation"]
        probe, choice = probe_seconds(args.batch_size, env)
        print(f"precision probe: {probe:.1f} s -> {choice}", file=sys.stderr, flush=True)
        for round_ in range(args.rounds):
            for name, (kind, setting) in contenders.items():
                if kind == "bb":
                    command = [sys.executable, "-c", BLOCKBUILDER, str(npz), str(args.epochs), str(args.batch_size),
                               setting, str(Path(tmp) / f"run{round_}{setting}")]
                else:
                    command = [sys.executable, "-c", KERAS_PEER if kind == "keras" else TORCH_PEER, str(npz),
                               str(args.epochs), str(args.batch_size), setting, str(sizes["train"]),
                               str(sizes["validation"])]
                result, wall = _child(command, env)
                sizes = result.get("sizes", sizes)
                got = {key: max(result[key][1:] or result[key]) for key in ("steps", "epochs")}
                got["wall"] = -wall  # larger is better, like the others
                mine = best.setdefault(name, got)
                for key, value in got.items():
                    mine[key] = max(mine[key], value)
                print(f"round {round_ + 1}: {name}: steps {got['steps']:,.0f}, epoch {got['epochs']:,.0f} images/s, "
                      f"{wall:.1f} s", file=sys.stderr, flush=True)
    peers = {name: speeds for name, speeds in best.items() if not name.startswith("blockbuilder")}
    print(f"ResNet-20, {args.images} images 32x32x3 ({sizes['train']} train, {sizes['validation']} validation, "
          f"{sizes['test']} test), batch {args.batch_size}, Adam, {args.epochs} epochs, best of {args.rounds} rounds"
          f"{'' if torch_ok else '; PyTorch not installed'}; precision probe {probe:.1f} s (-> {choice})")
    print(f"  {'':<58}{'steps img/s':>12}{'epoch img/s':>12}{'wall s':>8}")
    for name, speeds in best.items():
        print(f"  {name:<58}{speeds['steps']:>12,.0f}{speeds['epochs']:>12,.0f}{-speeds['wall']:>8.1f}")
    if not peers:
        return
    for name in (n for n in best if n.startswith("blockbuilder")):
        ratios = []
        for key in ("steps", "epochs", "wall"):
            fastest = max(peers, key=lambda peer: peers[peer][key])
            ratio = best[name][key] / peers[fastest][key] if key != "wall" else peers[fastest][key] / best[name][key]
            ratios.append(f"{key} {ratio:.2f} ({fastest.removeprefix('hand-written ')})")
        print(f"  ratio {name} / fastest peer: {'; '.join(ratios)}  (goal >= 0.9)")


if __name__ == "__main__":
    main()
