"""Wall time of the command line: start-up, and every command's bad-argument error (arguments first, TensorFlow second).

    python bench/bench_cli.py [--repeats 5]

Targets: ``--help`` and ``validate`` under 0.5 s; each command's bad-argument error under 1 s (TensorFlow
alone takes 3–9 s to import, so an error that waits for it misses by far). Ratios are against
``blockbuilder --help`` measured in the same run; a bare ``python -c pass`` is printed too. The CPU
time (user + system) of the child is printed beside the wall time: on a machine shared with other
work it says what the command costs when wall time says how long one waited. Every error case must
exit 1 or 2; the script stops if one does not.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

BLOCKBUILDER = [sys.executable, "-m", "blockbuilder"]


def fixtures(root: Path) -> dict[str, Path]:
    """The files the error cases point at: an empty YAML, a fake run, an image bomb, a plain file."""
    empty = root / "empty.yaml"
    empty.write_text("")
    run = root / "run"
    run.mkdir()
    with zipfile.ZipFile(run / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    (run / "resolved.yaml").write_bytes("name: caf\u00e9\n".encode("latin-1"))
    taken = root / "taken"
    taken.mkdir()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = root / "bomb.png"
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return {"empty": empty, "run": run, "taken": taken, "bomb": bomb, "missing": root / "missing"}


def commands(f: dict[str, Path]) -> dict[str, list[str]]:
    def cli(*args: object) -> list[str]:
        return [*BLOCKBUILDER, *map(str, args)]

    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "blockbuilder --help (baseline)": cli("--help"),
        "validate resnet50": cli("validate", "resnet50"),
        "summary empty.yaml": cli("summary", f["empty"]),
        "build lenet5 -o x.h5": cli("build", "lenet5", "-o", f["missing"] / "x.h5"),
        "train empty.yaml": cli("train", f["empty"]),
        "train lenet5 --export tfjs": cli("train", "lenet5", "--export", "tfjs", "-o", f["missing"] / "run"),
        "export RUN -o EXISTING": cli("export", f["run"], "-o", f["taken"]),
        "export RUN(latin-1 resolved.yaml)": cli("export", f["run"], "-o", f["missing"] / "out"),
        "export RUN -o /proc/x": cli("export", f["run"], "-o", "/proc/x"),
        "predict MISSING img": cli("predict", f["missing"], f["bomb"]),
        "predict RUN bomb.png": cli("predict", f["run"], f["bomb"]),
        "features RUN --image bomb.png": cli("features", f["run"], "--image", f["bomb"], "-o", f["missing"] / "f.png"),
        "explore MISSING": cli("explore", f["missing"]),
        "draw lenet5 -o x.gif": cli("draw", "lenet5", "-o", f["missing"] / "x.gif"),
        "compare lenet5 nosuchnet": cli("compare", "lenet5", "nosuchnet"),
    }


def timed(command: list[str], error: bool) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if (done.returncode in (1, 2)) != error:
        sys.exit(f"{' '.join(command)}: exit {done.returncode}\n{done.stderr}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = commands(fixtures(Path(tmp)))
        baseline = None
        for label, command in cases.items():
            error = label not in ("python -c pass", "blockbuilder --help (baseline)", "validate resnet50")
            timed(command, error)  # warm the file cache
            runs = [timed(command, error) for _ in range(args.repeats)]
            seconds, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            if label.endswith("(baseline)"):
                baseline = seconds
            target = 1.0 if error else 0.5
            verdict = f"ok (< {target:g} s)" if seconds < target else f"SLOW (>= {target:g} s)"
            ratio = f"{seconds / baseline:4.1f}x --help" if baseline else "         "
            print(f"{label:36s} {seconds:6.3f} s wall {cpu:6.3f} s cpu  {ratio}  {verdict}")


if __name__ == "__main__":
    main()
