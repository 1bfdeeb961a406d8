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

REPO = Path(__file__).resolve().parents[2]
# pytest-xdist workers carry COLUMNS/LINES, which would pin rich's width: the terminal alone must decide it.
OWN_SIZE = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
ENV = {**OWN_SIZE, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow",
       "TERM": "xterm-256color"}
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_in_terminal(command: list[str], columns: int, events: list[tuple[str, object]],
                    timeout: float = 240) -> tuple[int, list[str], str]:
    """Run ``command`` with a pseudo-terminal of ``columns`` as stdout.

    ``events``: ``(text, action)`` in order; once ``text`` has shown, ``action`` is done: an ``int``
    resizes the terminal to that many columns, ``"SIGINT"`` interrupts. Returns the exit code, the
    terminal output cut at each event, and stderr.
    """
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(command, env=ENV, stdin=subprocess.DEVNULL, stdout=follower,
                               stderr=subprocess.PIPE, close_fds=True)
    pending, parts, current = list(events), [], b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                current += chunk
                if pending and pending[0][0] in ESCAPE.sub("", current.decode(errors="replace")):
                    _, action = pending.pop(0)
                    parts.append(current.decode("utf-8", errors="replace"))
                    current = b""
                    if action == "SIGINT":
                        process.send_signal(signal.SIGINT)
                    else:
                        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, action, 0, 0))
            elif process.poll() is not None:
                break
    finally:
        if process.poll() is None:
            process.kill()
        stderr = process.communicate()[1].decode()
        os.close(leader)
        os.close(follower)  # kept open to resize the terminal; the loop ends when the process does
    parts.append(current.decode("utf-8", errors="replace"))
    return process.returncode, parts, stderr


def screen_lines(output: str) -> list[str]:
    """Every line the terminal showed, escape sequences removed (each redraw is a line)."""
    return [line for line in re.split(r"[\r\n]+", ESCAPE.sub("", output)) if line.strip()]


def test_live_display_fits_80_columns_then_60_and_ctrl_c_prints_the_resume_command(tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "blockbuilder", "train", "lenet5", "--epochs", "30", "--output", str(run_dir),
               "--set", "train.augmentation=[]"]
    # 30 epochs: the interrupt must land while training (an epoch takes 0.3 s on an idle machine)
    code, parts, stderr = run_in_terminal(command, 80, [("epoch 2/30  ", 60), ("epoch 3/30  ", 60),
                                                        ("epoch 4/30 ", "SIGINT")])
    assert code == 130, stderr + "".join(parts)[-2000:]
    assert "\x1b[" in parts[0]  # a live display redraws itself
    wide, narrow = screen_lines(parts[0]), screen_lines("".join(parts[2:]))
    assert max(len(line) for line in wide) <= 80, [line for line in wide if len(line) > 80]
    assert max(len(line) for line in narrow) <= 60, [line for line in narrow if len(line) > 60]
    steps = [line for line in wide if re.search(r"^epoch [12]/30 [━╺]+ step \d+/40 ", line)]
    assert any(re.search(r"step \d+/40 [\d,]+ img/s \d:\d\d:\d\d loss \d\.\d{4} acc \d\.\d{4}$", line)
               for line in steps), steps
    finished = [line for line in wide if line.startswith("epoch 1/30  ")]
    assert finished and re.match(r"epoch 1/30  loss \d\.\d{4}  acc \d\.\d{4}  val_loss \d\.\d{4}  val_acc \d\.\d{4}",
                                 finished[0]), finished
    finished = [line for line in screen_lines(parts[1]) if line.startswith("epoch 3/30  ")]  # printed at 60
    assert finished and len(finished[0]) <= 60 and "acc" in finished[0] and "val_acc" in finished[0], finished
    # epoch 3 ran whole at 60 columns (epoch 4 is interrupted as soon as it shows, maybe before its first step)
    at_60 = screen_lines("".join(parts[1:]))
    assert any(re.search(r"^epoch 3/30 [━╺]+ step \d+/40 .*loss \d\.\d{4}", line) and len(line) <= 60
               for line in at_60), at_60
    assert "Traceback" not in stderr
    resume = f"blockbuilder train lenet5 --set 'train.augmentation=[]' --epochs 30 --output {run_dir} --resume"
    assert resume in stderr, stderr
    # the last committed epoch is kept: 3, or a later one when the interrupt reached a loaded machine late
    # (only the newest checkpoint is kept, so epoch 4 finishing first removes epoch-0003)
    kept = [int(p.name.removeprefix("epoch-")) for p in (run_dir / "checkpoint").glob("epoch-*")]
    assert len(kept) == 1 and kept[0] >= 3, kept


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
