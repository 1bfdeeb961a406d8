"""ResNet-20 (CIFAR, 32x32x3) training speed of every explicit precision against ``precision: auto``.

Random data, the same hand-written Keras model and batch size for each policy, each timed in a fresh
process, in ``--rounds`` alternating rounds (the best round counts: other work on the machine only
slows a round down). Prints images/s per policy and ``auto``'s ratio to the fastest explicit policy,
``auto`` resolved as ``blockbuilder train`` resolves it on this machine's CPU.

    python bench/bench_precision.py [--steps 30] [--batch-size 128] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

ONE_POLICY = r"""
import sys, time
import numpy as np, keras
from keras import layers

policy, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
keras.mixed_precision.set_global_policy(policy)
keras.utils.set_random_seed(0)

def unit(x, filters, stride):
    shortcut = x
    y = layers.Conv2D(filters, 3, stride, "same", use_bias=False)(x)
    y = layers.Activation("relu")(layers.BatchNormalization()(y))
    y = layers.BatchNormalization()(layers.Conv2D(filters, 3, 1, "same", use_bias=False)(y))
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.BatchNormalization()(layers.Conv2D(filters, 1, stride, use_bias=False)(x))
    return layers.Activation("relu")(layers.Add()([y, shortcut]))

inputs = keras.Input((32, 32, 3))
x = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)))
for stage, filters in enumerate((16, 32, 64)):
    for i in range(3):
        x = unit(x, filters, 2 if stage and i == 0 else 1)
x = layers.GlobalAveragePooling2D()(x)
outputs = layers.Dense(10, activation="softmax", dtype="float32")(x)
model = keras.Model(inputs, outputs)
model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
x = rng.random((batch * steps, 32, 32, 3), dtype=np.float32)
y = rng.integers(0, 10, batch * steps)
model.fit(x[: batch * 3], y[: batch * 3], batch_size=batch, epochs=1, verbose=0)  # trace
start = time.perf_counter()
model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
print(batch * steps / (time.perf_counter() - start))
"""


def images_per_second(policy: str, steps: int, batch: int) -> float:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    out = subprocess.run([sys.executable, "-c", ONE_POLICY, policy, str(steps), str(batch)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from blockbuilder.training.devices import resolve_precision

    auto = resolve_precision("auto", "cpu")
    best = dict.fromkeys(POLICIES, 0.0)
    for _ in range(args.rounds):
        for policy in POLICIES:
            best[policy] = max(best[policy], images_per_second(policy, args.steps, args.batch_size))
    fastest = max(best, key=best.__getitem__)
    print(f"ResNet-20, 32x32x3, batch {args.batch_size}, {args.steps} steps, best of {args.rounds} rounds, "
          f"TensorFlow backend on CPU")
    for policy in POLICIES:
        print(f"  {policy:16}: {best[policy]:8.1f} images/s   {best[policy] / best['float32']:.2f}x float32")
    print(f"  auto -> {auto}: {best[auto] / best[fastest]:.2f}x the fastest explicit precision ({fastest})")


if __name__ == "__main__":
    main()
