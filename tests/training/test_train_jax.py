"""Two local processes train one model data-parallel with the JAX backend (issue 4, item 8).

This runs exactly the commands of docs/training.md ("Several machines") on 127.0.0.1: the same
``blockbuilder train`` command twice, with ``--process-id 0`` and ``1``. JAX connects them through
its coordinator; on CPU they exchange gradients through gloo.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("jax")

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "jax"}
DEADLINE_SECONDS = 180  # about 40 s on 2 CPU cores; a hung collective must never hang the suite


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_processes(commands: list[list[str]], logs: Path) -> list[tuple[int, str]]:
    """Start every command at once; return each one's exit code and output, killing all at the deadline."""
    logs.mkdir()
    outputs = [logs / f"process-{i}.log" for i in range(len(commands))]
    processes = []
    for command, output in zip(commands, outputs):
        with output.open("w") as handle:
            processes.append(subprocess.Popen(command, env=ENV, stdout=handle, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes:  # SIGKILL: JAX's distributed runtime catches SIGTERM
            if process.poll() is None:
                process.kill()
                process.wait()
    return [(process.returncode, output.read_text()) for process, output in zip(processes, outputs)]


def test_two_jax_processes_end_with_identical_weights_and_the_expected_metrics(tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-W", "error", "-m", "blockbuilder", "train", "lenet5", "--epochs", "3",
               "--output", str(run_dir), "--coordinator", f"127.0.0.1:{free_port()}",
               "--num-processes", "2"]
    results = run_processes([command + ["--process-id", str(i)] for i in (0, 1)], tmp_path / "logs")
    report = "\n".join(f"--- process {i}, exit code {code}:\n{output[-3000:]}"
                       for i, (code, output) in enumerate(results))
    assert [code for code, _ in results] == [0, 0], report

    leader = json.loads((run_dir / "metrics.json").read_text())
    other = json.loads((run_dir / "process-1.json").read_text())
    assert leader["processes"] == other["processes"] == 2
    assert leader["weights_sha256"] == other["weights_sha256"]
    assert leader["test"] == other["test"]
    assert leader["epochs_completed"] == 3 and leader["stopped"] == "completed"
    assert leader["test"]["accuracy"] >= 0.85, leader["test"]

    leader_output, other_output = results[0][1], results[1][1]
    assert "training lenet5 on digits" in leader_output and "test metrics (360 images)" in leader_output
    assert "epoch " not in other_output and "test metrics" not in other_output  # only process 0 reports
