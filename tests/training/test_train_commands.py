"""``blockbuilder train``, one command at a time: NaN loss, an unwritable output, a bad ``train:`` key,
``--help``, ``--export`` after ``--resume`` (apart from test_train.py, whose main jobs hold one pytest
worker for a while, so these run beside them)."""

from __future__ import annotations

import json
import subprocess
import sys

from test_train import ENV, metrics_of, train_cli

FAST = ["--set", "train.augmentation=[]", "--set", "train.batch_size=8"]


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_model(tmp_path, cli):
    code, out, _ = cli(
        "train", "lenet5", "--epochs", "3", "--output", tmp_path, *FAST,
        "--set", "train.optimizer={name: sgd, learning_rate: 0.01}",
        "--set", "train.schedule={type: piecewise, boundaries: [1], factors: [1.0e+12]}",
    )
    assert code == 1
    assert "the loss became NaN in epoch 2" in out
    assert "kept the model of epoch 1" in out
    metrics = metrics_of(tmp_path)
    assert metrics["stopped"] == "nan" and metrics["epochs_completed"] == 1
    assert metrics["test"]["accuracy"] > 0.5  # the epoch-1 model, not the NaN one
    json.loads((tmp_path / "metrics.json").read_text(), parse_constant=lambda token: 1 / 0)  # strict JSON
    assert (tmp_path / "model.keras").is_file()


def test_unwritable_output_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = train_cli("lenet5", "--epochs", "1", "--output", str(blocker / "run"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"blockbuilder train: error: cannot create run directory {blocker / 'run'}: Not a directory"]


def test_bad_train_section_points_at_the_key(tmp_path):
    result = train_cli("lenet5", "--set", "train.optimizer.lr=0.1")
    assert result.returncode == 1
    assert "train.optimizer" in result.stderr and "lr" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_training_flags():
    out = subprocess.run([sys.executable, "-m", "blockbuilder", "train", "--help"], env=ENV,
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--epochs", "--batch-size", "--output", "--device", "--seed", "--resume",
                 "--precision", "--export", "--coordinator", "--num-processes", "--process-id"):
        assert flag in out


def test_export_at_the_end_of_training_also_after_resume(tmp_path, cli):
    run_dir = tmp_path / "run"
    code, out, err = cli("train", "lenet5", "--epochs", "1", "--output", run_dir, "--export", "savedmodel", *FAST)
    assert code == 0, err
    assert f"exported savedmodel to {run_dir / 'export' / 'savedmodel'}" in out
    code, out, err = cli("train", "lenet5", "--epochs", "2", "--output", run_dir, "--resume", "--export",
                         "savedmodel", *FAST)
    assert code == 0, err
    assert "--resume: applying a changed setting: train.epochs: 1 -> 2" in out
    metadata = json.loads((run_dir / "export" / "savedmodel" / "assets" / "blockbuilder.json").read_text())
    assert metadata["class_names"] == [str(d) for d in range(10)]
    assert not list((run_dir / "export").glob(".*partial"))
    assert [len(list((run_dir / "logs" / split).iterdir())) for split in ("train", "validation")] == [1, 1]
