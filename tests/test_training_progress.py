"""The live display under a pseudo-terminal: it fits 80 columns and still reads at 60; Ctrl-C stops
cleanly with exit code 130 and the ``--resume`` command (issue 11, item 7)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from blockbuilder.training.progress import fit_fields

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow",
       "TERM": "xterm-256color"}
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_in_terminal(command: list[str], columns: int, interrupt_when: str | None = None,
                    timeout: float = 240) -> tuple[int, str, str]:
    """Run ``command`` with a pseudo-terminal of ``columns`` as stdout; SIGINT once ``interrupt_when`` shows.

    Returns the exit code, the terminal output and stderr.
    """
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(command, env=ENV, stdin=subprocess.DEVNULL, stdout=follower,
                               stderr=subprocess.PIPE, close_fds=True)
    os.close(follower)
    chunks: list[bytes] = []
    deadline, interrupted = time.monotonic() + timeout, False
    try:
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if interrupt_when and not interrupted and interrupt_when in b"".join(chunks).decode(errors="replace"):
                    process.send_signal(signal.SIGINT)
                    interrupted = True
            elif process.poll() is not None:
                break
    finally:
        if process.poll() is None:
            process.kill()
        stderr = process.communicate()[1].decode()
        os.close(leader)
    return process.returncode, b"".join(chunks).decode("utf-8", errors="replace"), stderr


def screen_lines(output: str) -> list[str]:
    """Every line the terminal showed, escape sequences removed (each redraw is a line)."""
    return [line for line in re.split(r"[\r\n]+", ESCAPE.sub("", output)) if line.strip()]


def train_command(run_dir: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "blockbuilder", "train", "lenet5", "--epochs", str(epochs), "--output",
            str(run_dir), "--set", "train.augmentation=[]"]


def test_live_display_fits_80_columns(tmp_path):
    code, output, stderr = run_in_terminal(train_command(tmp_path / "run", 2), columns=80)
    assert code == 0, stderr + output[-2000:]
    assert "\x1b[" in output  # a live display redraws itself
    lines = screen_lines(output)
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    steps = [line for line in lines if re.search(r"^epoch 1/2 [━╺]+ step \d+/40 ", line)]
    assert steps, lines
    assert any(re.search(r"step \d+/40 [\d,]+ img/s \d:\d\d:\d\d loss \d\.\d{4} acc \d\.\d{4}$", line)
               for line in steps), steps
    finished = [line for line in lines if line.startswith("epoch 2/2  ")]
    assert finished and re.match(r"epoch 2/2  loss \d\.\d{4}  acc \d\.\d{4}  val_loss \d\.\d{4}  val_acc \d\.\d{4}",
                                 finished[0]), finished
    assert any("test metrics (360 images)" in line for line in lines)


def test_at_60_columns_it_drops_fields_and_ctrl_c_prints_the_resume_command(tmp_path):
    run_dir = tmp_path / "run"
    code, output, stderr = run_in_terminal(train_command(run_dir, 5), columns=60, interrupt_when="epoch 2/5 ")
    assert code == 130, stderr + output[-2000:]
    lines = screen_lines(output)
    assert max(len(line) for line in lines) <= 60, [line for line in lines if len(line) > 60]
    finished = [line for line in lines if line.startswith("epoch 1/5  ")]
    assert finished and "acc" in finished[0] and "val_acc" in finished[0], lines
    assert any(re.search(r"^epoch 2/5 [━╺]+ step \d+/40", line) for line in lines), lines
    assert "Traceback" not in stderr
    resume = f"blockbuilder train lenet5 --set 'train.augmentation=[]' --epochs 5 --output {run_dir} --resume"
    assert resume in stderr, stderr
    assert (run_dir / "checkpoint" / "epoch-0001").is_dir()


@pytest.mark.parametrize("width, expected", [
    (80, ["epoch 3/20", "loss 0.1234", "acc 0.9712", "val_loss 0.2345", "val_acc 0.9500", "2.3s"]),
    (60, ["epoch 3/20", "loss 0.1234", "acc 0.9712", "val_acc 0.9500", "2.3s"]),
    (30, ["epoch 3/20", "acc 0.9712", "2.3s"]),
])
def test_fields_are_dropped_by_priority_not_cut(width, expected):
    fields = {"epoch": "epoch 3/20", "loss": "loss 0.1234", "accuracy": "acc 0.9712", "val_loss": "val_loss 0.2345",
              "val_accuracy": "val_acc 0.9500", "speed": "1,234 img/s", "seconds": "2.3s"}
    from blockbuilder.training.progress import EPOCH_PRIORITY

    kept = fit_fields(fields, EPOCH_PRIORITY, width)
    assert kept == expected and len("  ".join(kept)) <= width
