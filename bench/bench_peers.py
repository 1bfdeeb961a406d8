"""ResNet-20 training speed: ``blockbuilder train`` against the best hand-written peers, in one run.

    python bench/bench_peers.py [--images 6400] [--epochs 3] [--batch-size 128] [--rounds 2]

The same network (ResNet-20, CIFAR option A, 32x32x3, 10 classes), the same synthetic data (an
``.npz`` of uint8 images), batch size and optimiser (Adam 1e-3), no augmentation, each in a fresh
process, in alternating rounds; images/s over the epochs after the first (which includes tracing),
the best round counting (other work on the machine only slows a round down):

* ``blockbuilder train resnet20_cifar`` with ``precision: auto`` (what a user gets) and ``float32``;
* hand-written Keras: ``model.fit`` on an in-memory ``tf.data`` pipeline, float32, and
  ``jit_compile=True`` (XLA);
* hand-written PyTorch (when ``import torch`` works): the same ResNet-20 as an ``nn.Module``,
  channels-last, float32, and bfloat16 autocast where the CPU has AVX512-BF16 or AMX.

Prints images/s per contender and blockbuilder's ratio to the fastest peer (the goal: >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

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
train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).batch(batch).prefetch(-1)

class Timer(keras.callbacks.Callback):
    seconds = []
    def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): self.seconds.append(time.perf_counter() - self.t)

model.fit(train, epochs=epochs, callbacks=[Timer()], verbose=0)
print(json.dumps([len(x) / s for s in Timer.seconds]))
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
seconds = []
for epoch in range(epochs):
    start = time.perf_counter()
    order = torch.randperm(len(x))
    for i in range(0, len(x), batch):
        idx = order[i:i + batch]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds.append(time.perf_counter() - start)
print(json.dumps([len(x) / s for s in seconds]))
"""


def make_data(path: Path, images: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.arange(images) % 10
    x = rng.integers(0, 64, (images, 32, 32, 3), dtype=np.uint8) + (y * 19).astype(np.uint8)[:, None, None, None]
    np.savez(path, x=x, y=y)


def _child(command: list[str], env: dict[str, str]) -> list[float]:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{done.stderr[-2000:]}")
    return [float(v) for v in json.loads(done.stdout.strip().splitlines()[-1])]


def blockbuilder_speed(npz: Path, args: argparse.Namespace, precision: str, out: Path) -> list[float]:
    command = [sys.executable, "-m", "blockbuilder", "train", "resnet20_cifar", "--output", str(out),
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--precision", precision,
               "--set", f"train.dataset=npz:{npz}", "--set", "train.augmentation=[]"]
    subprocess.run(command, env=ENV, check=True, stdout=subprocess.DEVNULL)
    history = [line.split(",") for line in (out / "history.csv").read_text().splitlines()]
    column = history[0].index("images_per_second")
    return [float(row[column]) for row in history[1:]]


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
    args = parser.parse_args()
    torch_ok = subprocess.run([sys.executable, "-c", "import torch"], env=ENV, capture_output=True).returncode == 0
    contenders: dict[str, object] = {
        "blockbuilder train, precision auto": ("bb", "auto"),
        "blockbuilder train, float32": ("bb", "float32"),
        "hand-written Keras fit, float32": ("keras", "0"),
        "hand-written Keras fit, float32, XLA": ("keras", "1"),
    }
    if torch_ok:
        contenders["hand-written PyTorch, float32, channels-last"] = ("torch", "0")
        if _has_bf16():
            contenders["hand-written PyTorch, bfloat16 autocast, channels-last"] = ("torch", "1")
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        make_data(npz, args.images)
        for round_ in range(args.rounds):
            for name, (kind, setting) in contenders.items():  # type: ignore[misc]
                if kind == "bb":
                    speeds = blockbuilder_speed(npz, args, setting, Path(tmp) / f"run{round_}{setting}")
                else:
                    script = KERAS_PEER if kind == "keras" else TORCH_PEER
                    speeds = _child([sys.executable, "-c", script, str(npz), str(args.epochs),
                                     str(args.batch_size), setting], ENV)
                later = speeds[1:] or speeds
                best[name] = max(best.get(name, 0.0), max(later))
                print(f"round {round_ + 1}: {name}: {max(later):,.0f} images/s", file=sys.stderr, flush=True)
    peers = {name: speed for name, speed in best.items() if not name.startswith("blockbuilder")}
    fastest = max(peers, key=lambda name: peers[name])
    print(f"ResNet-20, {args.images} images 32x32x3, batch {args.batch_size}, Adam, epochs 2..{args.epochs}, "
          f"best of {args.rounds} rounds (images/s){'' if torch_ok else '; PyTorch not installed'}")
    for name, speed in best.items():
        print(f"  {name:<58}{speed:>9,.0f}")
    for name in ("blockbuilder train, precision auto", "blockbuilder train, float32"):
        print(f"  ratio {name} / {fastest}: {best[name] / peers[fastest]:.2f}  (goal >= 0.9)")


if __name__ == "__main__":
    main()
