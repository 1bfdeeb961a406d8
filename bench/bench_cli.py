"""Wall time of ``blockbuilder --help`` and ``blockbuilder validate`` (target: < 0.5 s each).

    python bench/bench_cli.py [--repeats 5]

Also prints the start-up of a bare ``python -c pass`` measured in the same run as the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "blockbuilder --help": [sys.executable, "-m", "blockbuilder", "--help"],
    "blockbuilder validate resnet50": [sys.executable, "-m", "blockbuilder", "validate", "resnet50"],
    "blockbuilder validate lenet5": [sys.executable, "-m", "blockbuilder", "validate", "lenet5"],
}


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    baseline = None
    for label, command in COMMANDS.items():
        wall(command)
        seconds = statistics.median(wall(command) for _ in range(args.repeats))
        baseline = baseline or seconds
        verdict = "" if baseline == seconds else ("  ok (< 0.5 s)" if seconds < 0.5 else "  SLOW (>= 0.5 s)")
        print(f"{label:34s} {seconds:6.3f} s  ({seconds / baseline:4.1f}x python start-up){verdict}")


if __name__ == "__main__":
    main()
