"""Build time from YAML vs keras.applications for the same network, measured in one process.

    python bench/bench_build.py [--repeats 3]

Prints the median seconds of each and the ratio (target: <= 1.2 for ResNet-50). The blockbuilder
time includes reading, validating and expanding the YAML.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import blockbuilder  # noqa: E402

PAIRS = {
    "resnet50": lambda: keras.applications.ResNet50(weights=None),
    "vgg16": lambda: keras.applications.VGG16(weights=None),
}


def timed(make) -> float:
    keras.backend.clear_session()
    started = time.perf_counter()
    make()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("networks", nargs="*", default=["resnet50"])
    args = parser.parse_args()
    for name in args.networks:
        timed(PAIRS[name])  # warm-up: first layer creation pays for TensorFlow's lazy set-up
        ours, theirs = [], []
        for _ in range(args.repeats):
            theirs.append(timed(PAIRS[name]))
            ours.append(timed(lambda name=name: blockbuilder.build(blockbuilder.load(name))))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{name}: blockbuilder {a:.2f} s, keras.applications {b:.2f} s, ratio {a / b:.2f} "
              f"(target <= 1.20, median of {args.repeats})")


if __name__ == "__main__":
    main()
