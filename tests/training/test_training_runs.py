"""Runs are never lost (issue 11, items 2-6): run directories, exact resume, changed settings, faults,
paths relative to the file that wrote them. Most of it is decided before TensorFlow is imported, so most
tests here run the command line in this process and never train."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import blockbuilder
from blockbuilder.training.api import TrainOptions, plan
from blockbuilder.training.checkpoint import RunState
from blockbuilder.training.rundir import choose_run_dir, strict_json
from blockbuilder.training.spec import TrainError

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}


def fake_run(run_dir: Path, epoch: int = 2, state: object = None, variables: bytes | None = None) -> Path:
    """A run directory as training leaves it after ``epoch`` epochs (lenet5; the arrays are dummies)."""
    folder = run_dir / "checkpoint" / f"epoch-{epoch:04d}"
    folder.mkdir(parents=True)
    (run_dir / "resolved.yaml").write_text(blockbuilder.load("lenet5").to_yaml())
    history = [{"epoch": e + 1, "loss": 0.5, "val_loss": 0.5} for e in range(epoch)]
    state = RunState(epochs_completed=epoch, history=history, best_value=0.5, best_epoch=epoch).model_dump() \
        if state is None else state
    (folder / "state.json").write_text(json.dumps(state))
    if variables is None:
        np.savez(folder / "variables.npz", **{"model/00000": np.zeros(3), "optimizer/00000": np.zeros(1)})
    else:
        (folder / "variables.npz").write_bytes(variables)
    os.link(folder / "variables.npz", folder / "best.npz")
    return run_dir


# --------------------------------------------------------------------------- where runs go


def test_a_new_run_never_replaces_one(tmp_path):
    runs = tmp_path / "runs"
    assert choose_run_dir("net", None, False, runs) == runs / "net"
    (runs / "net").mkdir(parents=True)
    assert choose_run_dir("net", None, False, runs) == runs / "net"  # empty: nothing to lose
    (runs / "net" / "metrics.json").write_text("{}")
    assert choose_run_dir("net", None, False, runs) == runs / "net-2"
    (runs / "net-2").mkdir()
    (runs / "net-2" / "history.csv").write_text("")
    assert choose_run_dir("net", None, False, runs) == runs / "net-3"
    assert choose_run_dir("net", None, True, runs) == runs / "net-2"  # --resume: the latest run
    with pytest.raises(TrainError, match="--resume: no run of other in .*runs/"):
        choose_run_dir("other", None, True, runs)


def test_an_output_that_holds_a_run_is_refused_before_tensorflow(tmp_path, cli):
    fake_run(tmp_path / "run")
    code, out, err = cli("train", "lenet5", "--output", tmp_path / "run")
    assert code == 1 and out == ""
    assert err == (f"blockbuilder train: error: {tmp_path / 'run'} holds a run already: continue it with "
                   f"--resume, or choose another --output\n")


def test_resume_without_output_finds_the_latest_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_run(tmp_path / "runs" / "lenet5")
    fake_run(tmp_path / "runs" / "lenet5-2", epoch=3)
    decided = plan(blockbuilder.load("lenet5"), TrainOptions(resume=True))
    assert decided.run_dir == Path("runs/lenet5-2") and decided.checkpoint is not None
    assert decided.checkpoint.state.epochs_completed == 3


# --------------------------------------------------------------------------- resume with other settings


def test_resume_with_changed_settings_is_refused_with_the_differences(tmp_path, cli):
    fake_run(tmp_path / "run")
    code, _, err = cli("train", "lenet5", "--output", tmp_path / "run", "--resume",
                       "--set", "train.optimizer.learning_rate=1e6", "--set", "network[0].conv.filters=8")
    assert code == 1 and len(err.splitlines()) == 1
    assert "was trained with other settings" in err
    assert "train.optimizer.learning_rate: 0.001 -> 1000000.0" in err
    assert "network" in err and "undo the change, or start a new run without --resume" in err


def test_resume_with_more_epochs_applies_them_with_a_notice(tmp_path):
    fake_run(tmp_path / "run")
    decided = plan(blockbuilder.load("lenet5", ["train.epochs=30"]), TrainOptions(output=str(tmp_path / "run"),
                                                                                  resume=True))
    assert decided.notices == ["--resume: applying a changed setting: train.epochs: 20 -> 30"]
    assert decided.spec.epochs == 30


# --------------------------------------------------------------------------- damaged checkpoints


@pytest.mark.parametrize("state, expected", [
    ({"epochs_completed": "2"}, "epochs_completed: Input should be a valid integer"),
    ({"history": 5}, "history: Input should be a valid list"),
    ({"epochs_completed": -3}, "epochs_completed: Input should be greater than or equal to 0"),
    ({"epochs_completed": 2, "history": [{"loss": "x"}, {}]}, "history.0.loss"),
    ("not json{", "is not valid JSON"),
])
def test_a_damaged_state_file_is_one_line_naming_it(tmp_path, cli, state, expected):
    run = tmp_path / "run"
    fake_run(run)
    state_file = run / "checkpoint" / "epoch-0002" / "state.json"
    state_file.write_text(state if isinstance(state, str) else json.dumps(state))
    code, out, err = cli("train", "lenet5", "--output", run, "--resume")
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err.startswith(f"blockbuilder train: error: cannot resume: {state_file}")
    assert expected in err


@pytest.mark.parametrize("content, expected", [
    (b"", "is not a readable checkpoint"),
    (b"garbage" * 100, "is not a readable checkpoint"),
    (None, "is missing"),
])
def test_a_damaged_variables_file_is_one_line_naming_it(tmp_path, cli, content, expected):
    run = tmp_path / "run"
    fake_run(run)
    variables = run / "checkpoint" / "epoch-0002" / "variables.npz"
    if content is None:
        variables.unlink()
    else:
        variables.write_bytes(content)
    code, _, err = cli("train", "lenet5", "--output", run, "--resume")
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err == f"blockbuilder train: error: cannot resume: {variables} {expected}" + err.split(expected)[1]


def test_a_truncated_variables_file_is_one_line(tmp_path, cli):
    run = tmp_path / "run"
    fake_run(run)
    variables = run / "checkpoint" / "epoch-0002" / "variables.npz"
    variables.write_bytes(variables.read_bytes()[:200])
    code, _, err = cli("train", "lenet5", "--output", run, "--resume")
    assert code == 1 and err.startswith(f"blockbuilder train: error: cannot resume: {variables} is not a readable")


def test_metrics_json_is_strict_json_with_null_for_non_finite_numbers():
    text = strict_json({"test": {"loss": float("nan"), "accuracy": 0.5}, "best": float("inf"), "rows": [np.float32(1)]})

    def refuse(token: str) -> None:
        raise ValueError(token)

    assert json.loads(text, parse_constant=refuse) == {"test": {"loss": None, "accuracy": 0.5}, "best": None,
                                                       "rows": [1.0]}


# --------------------------------------------------------------------------- data set paths and images


def test_dataset_paths_are_relative_to_the_file_that_wrote_them(tmp_path, monkeypatch):
    (tmp_path / "base" / "data").mkdir(parents=True)
    np.savez(tmp_path / "base" / "data" / "d.npz", x=np.zeros((4, 8, 8)), y=np.arange(4))
    (tmp_path / "base" / "base.yaml").write_text(
        "input: [8, 8, 1]\nclasses: 4\nnetwork: [flatten, {dense: 4}]\ntrain: {dataset: npz:data/d.npz}\n")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "arch.yaml").write_text("extends: ../base/base.yaml\nname: child\n")
    monkeypatch.chdir(tmp_path / "project")
    decided = plan(blockbuilder.load("arch.yaml"), TrainOptions(output="run"))
    assert decided.spec.dataset == f"npz:{Path('../base/data/d.npz')}"
    assert Path(decided.spec.dataset[4:]).resolve() == (tmp_path / "base" / "data" / "d.npz").resolve()
    # on the command line, relative to the working directory
    np.savez(tmp_path / "project" / "here.npz", x=np.zeros((4, 8, 8)), y=np.arange(4))
    decided = plan(blockbuilder.load("arch.yaml", ["train.dataset=npz:here.npz"]), TrainOptions(output="run"))
    assert decided.spec.dataset == "npz:here.npz"


def test_a_missing_dataset_path_is_reported_at_its_line_before_tensorflow(tmp_path):
    (tmp_path / "arch.yaml").write_text(
        "input: [8, 8, 1]\nclasses: 2\nnetwork: [flatten, {dense: 2}]\ntrain:\n  dataset: folder:photos\n")
    code = ("import sys\nfrom blockbuilder.cli.main import main\n"
            f"code = main(['train', {str(tmp_path / 'arch.yaml')!r}])\n"
            "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert result.stdout.split() == ["1", "False", "False"], result.stderr
    assert result.stderr == (f"{tmp_path / 'arch.yaml'}:5:12: train.dataset: folder 'photos' "
                             f"({tmp_path / 'photos'}) does not exist\n")


def test_corrupt_images_in_a_folder_are_named_before_training(tmp_path, cli):
    from PIL import Image

    for name in ("cat", "dog"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (12, 12), (i * 40, 0, 0)).save(tmp_path / "photos" / name / f"{i}.png")
    png = (tmp_path / "photos" / "dog" / "3.png").read_bytes()
    (tmp_path / "photos" / "dog" / "3.png").write_bytes(png[: len(png) // 2])  # truncated
    (tmp_path / "photos" / "cat" / "0.png").write_bytes(b"not an image")
    (tmp_path / "arch.yaml").write_text(
        "input: [8, 8, 3]\nclasses: 2\nnetwork: [flatten, {dense: 2}]\ntrain: {dataset: folder:photos}\n")
    code, _, err = cli("train", tmp_path / "arch.yaml", "--output", tmp_path / "run")
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "train.dataset: 2 of 10 images in folder" in err
    assert f"{tmp_path / 'photos' / 'cat' / '0.png'}: cannot read image" in err
    assert f"{tmp_path / 'photos' / 'dog' / '3.png'}: cannot read image" in err
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- real runs (TensorFlow)

RESUME_NET = """\
name: resume_net
input: [8, 8, 1]
classes: 10
network:
  - fractal:
      columns: 2
      local_drop: 0.15
      global_ratio: 0.5
      body:
        - conv: {filters: 8, kernel: 3, norm: batchnorm, activation: relu}
  - dropout: 0.3
  - global_avg_pool
  - dense: {units: $classes, activation: softmax}
train:
  epochs: 3
  batch_size: 64
  augmentation: [flip, {translation: {factor: 0.1}}]
"""


def train_process(*args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**ENV, "BLOCKBUILDER_TEST_KILL_AT": kill_at} if kill_at else ENV
    return subprocess.run([sys.executable, "-W", "error", "-m", "blockbuilder", "train", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_kill_9_at_any_instant_then_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    """Dropout, drop-path, BatchNorm, augmentation and shuffling, with kills inside an epoch, inside the
    commit (epoch directory written, not yet renamed) and just after it (renamed, older epoch not removed)."""
    arch = tmp_path / "resume_net.yaml"
    arch.write_text(RESUME_NET)
    # uninterrupted, in a fresh process like the others: a test worker's process carries the state of the
    # tests before it (in fresh-clone CI runs the in-process reference's checksum differed)
    straight = train_process(str(arch), "--output", str(tmp_path / "reference"))
    assert straight.returncode == 0, straight.stderr
    run = tmp_path / "killed"
    for point, committed in (("batch:2", ["epoch-0001"]), ("written:2", ["epoch-0001"]),
                             ("renamed:2", ["epoch-0001", "epoch-0002"])):
        killed = train_process(str(arch), "--output", str(run), *(["--resume"] if run.exists() else []),
                               kill_at=point)
        assert killed.returncode == -9, killed.stderr
        assert sorted(p.name for p in (run / "checkpoint").iterdir() if not p.name.startswith(".")) == committed
    resumed = train_process(str(arch), "--output", str(run), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 2" in resumed.stdout
    expected = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    got = json.loads((run / "metrics.json").read_text())
    assert got["weights_sha256"] == expected["weights_sha256"]
    assert got["test"] == expected["test"] and got["epochs_completed"] == 3
    assert [row["epoch"] for row in got_history(run)] == [1, 2, 3]
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == ["epoch-0003"]
    assert not [p for p in run.rglob(".*")], "temporary files left behind"


def got_history(run: Path) -> list[dict]:
    import csv

    with (run / "history.csv").open() as handle:
        return [{"epoch": int(row["epoch"])} for row in csv.DictReader(handle)]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs to fill the disk needs root")
def test_disk_full_is_one_line_and_exit_1_without_a_crash(tmp_path):
    """1200 KB: the first epoch's checkpoint (750 KB) fits, ``model.keras`` (Keras' zip of HDF5) does not."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        result = train_process("lenet5", "--epochs", "2", "--output", str(disk / "run"), "--set",
                               "train.augmentation=[]")
        leftovers = [p.name for p in (disk / "run").rglob(".*")]
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert result.stderr.splitlines() == [result.stderr.strip()]
    model = disk / "run" / "model.keras"
    assert result.stderr == f"blockbuilder train: error: cannot write {model}: No space left on device\n"
    assert leftovers == []
