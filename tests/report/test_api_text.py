"""What a plain script sees from the Python API: tables and one-line reprs, no TensorFlow start-up chatter."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from blockbuilder.report.summary import BlockSummary, Summary
from blockbuilder.training.api import Run

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import os
import blockbuilder

arch = blockbuilder.load("lenet5")
model = blockbuilder.build(arch)
print(blockbuilder.summarize(arch, model))
print("COUNT", model.count_params(), "LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
"""

CHATTER = ("oneDNN", "cuInit", "TF_ENABLE_ONEDNN_OPTS", "cpu_feature_guard", "absl::InitializeLog")


def run_script(level: str | None) -> subprocess.CompletedProcess[str]:
    """The script as a user runs it: no TF_CPP_MIN_LOG_LEVEL unless ``level`` (conftest sets one here)."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env.update({"PYTHONPATH": str(REPO), "KERAS_BACKEND": "tensorflow", **({} if level is None else
                                                                          {"TF_CPP_MIN_LOG_LEVEL": level})})
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def plain() -> subprocess.CompletedProcess[str]:
    return run_script(None)


def test_print_summary_shows_the_table_with_the_exact_totals(plain: subprocess.CompletedProcess[str]) -> None:
    table, _, last = plain.stdout.rstrip("\n").rpartition("\n")
    count = int(last.split()[1])
    assert count == 61_706  # LeNet-5
    rows = {line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│")}
    assert {"conv1", "max_pool1", "conv2", "max_pool2", "flatten1", "dense1", "dense2", "dense3"} <= rows
    totals = dict(line.rsplit(None, 1) for line in table.splitlines()[-7:-1])
    assert totals["Total params"] == f"{count:,}" and totals["Trainable params"] == f"{count:,}"
    assert totals["Non-trainable params"] == "0"
    assert totals["Depth (weight layers)"] == "5"
    assert "BlockSummary(" not in table and len(table) < 3000


def test_a_script_shows_no_tensorflow_start_up_chatter(plain: subprocess.CompletedProcess[str]) -> None:
    assert [line for line in plain.stderr.splitlines() if any(word in line for word in CHATTER)] == []
    assert plain.stdout.split()[-1] == "3"  # TensorFlow's own log level, set for the rest of the run


def test_a_users_own_tensorflow_log_level_is_kept() -> None:
    assert run_script("1").stdout.split()[-1] == "1"


def tiny() -> Summary:
    conv = BlockSummary("stage1.conv1", "conv", [8, 8, 4], 112, 6_912, 1, receptive_field=3)
    stage = BlockSummary("stage1", "stage (repeat)", [8, 8, 4], 112, 6_912, 1, receptive_field=3, children=[conv])
    head = BlockSummary("dense1", "dense", [10], 2_570, 2_560, 1)
    return Summary("tiny", [8, 8, 3], [10], 2_682, 2_682, 0, 9_472, 2, [stage, head])


def test_repr_is_one_line_with_the_totals() -> None:
    summary = tiny()
    assert repr(summary) == "<Summary tiny: 2,682 params, 9.47 K MACs, depth 2>"
    assert repr(summary.blocks[0]) == ("<BlockSummary stage1 (stage (repeat)): [8, 8, 4], 112 params, "
                                       "6.91 K MACs, depth 1, 1 children>")


def test_str_is_the_table_and_depth_folds_it() -> None:
    summary = tiny()
    text = str(summary)
    assert text.splitlines()[0] == "tiny: input [8, 8, 3]"
    assert "└─ conv1" in text and "Total params" in text and "\x1b[" not in text
    folded = summary.text(depth=1)
    assert "stage1 (+1 block)" in folded and "conv1" not in folded


def test_rich_prints_the_same_table_in_colour() -> None:
    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=200)
    console.print(tiny())
    coloured = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[" in coloured and "└─ conv1" in coloured and "Total params" in coloured


def test_show_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    tiny().show(depth=1)
    assert "stage1 (+1 block)" in capsys.readouterr().out


def test_a_run_reprs_as_one_line_of_test_metrics() -> None:
    rows = [{"class": str(k), "precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 36} for k in range(10)]
    metrics = {"test": {"loss": 0.0612, "accuracy": 0.981, "per_class": rows}, "epochs_completed": 2,
               "stopped": "completed"}
    run = Run(Path("runs/lenet5"), object(), metrics, [{"epoch": 1}, {"epoch": 2}])
    assert repr(run) == str(run) == ("<Run runs/lenet5: 2 epochs, stopped: completed, test loss 0.0612, "
                                     "test accuracy 0.9810>")


def test_an_architecture_reprs_as_one_line() -> None:
    import blockbuilder

    assert repr(blockbuilder.load("lenet5")) == "<Architecture lenet5: input (32, 32, 1), 10 classes, depth 5>"
