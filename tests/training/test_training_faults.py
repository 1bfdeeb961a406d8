"""Training's faults of issue 23, each as a user meets it: a run directory two ``train`` processes race for,
per-class outputs of a data set with very many classes, image files TensorFlow cannot decode, npz files
that are not what they should be, and run files ``report`` and ``evaluate`` read."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
ROUNDS = 20


# --------------------------------------------------------------------------- item 1: one run directory, one run


def _claimer(rounds: int, root: str, text: str, barrier, results) -> None:
    """Claim ``root/run-N`` for ``rounds`` rounds, each started with the other process at a barrier."""
    from blockbuilder.training.rundir import claim_new_run_dir
    from blockbuilder.training.spec import TrainError

    outcome = []
    for index in range(rounds):
        barrier.wait()
        try:
            path, _ = claim_new_run_dir("net", Path(root) / f"run-{index}", root, text)
            outcome.append(["won", str(path)])
        except TrainError as error:
            outcome.append(["lost", str(error)])
        barrier.wait()  # without --output: both claim runs/net-N, the loser takes the next free name
        path, _ = claim_new_run_dir("net", None, Path(root) / f"auto-{index}", text)
        outcome.append(["auto", str(path)])
    results.put((text, outcome))


def test_two_processes_claiming_one_run_directory_have_exactly_one_winner(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold TensorFlow's threads
    barrier, results = context.Barrier(2), context.Queue()
    texts = ["learning_rate: 0.005\n", "learning_rate: 0.001\n"]
    workers = [context.Process(target=_claimer, args=(ROUNDS, str(tmp_path), text, barrier, results))
               for text in texts]
    for worker in workers:
        worker.start()
    got = dict(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0

    for index in range(ROUNDS):
        run = tmp_path / f"run-{index}"
        claims = {text: got[text][2 * index] for text in texts}
        winners = [text for text, (what, _) in claims.items() if what == "won"]
        assert len(winners) == 1, claims
        loser = next(text for text in texts if text not in winners)
        assert claims[loser][1] == (f"{run} holds a run already: continue it with --resume, or choose another "
                                    "--output")
        assert [p.name for p in run.iterdir()] == ["resolved.yaml"]  # the loser wrote nothing
        assert (run / "resolved.yaml").read_text() == winners[0]
        autos = sorted(Path(got[text][2 * index + 1][1]).name for text in texts)
        assert autos == ["net", "net-2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"run-{i}" for i in range(ROUNDS)] + [f"auto-{i}" for i in range(ROUNDS)])  # no claim file left


def test_two_train_commands_on_one_output_one_trains_and_its_settings_are_recorded(tmp_path: Path) -> None:
    """Issue 23: both passed the check; the loser failed, but its resolved.yaml (0.001) stayed beside a
    run trained at 0.005."""
    run = tmp_path / "run"
    rates = ("0.005", "0.001")
    processes = [subprocess.Popen(
        [sys.executable, "-m", "blockbuilder", "train", "lenet5", "--epochs", "1", "--output", str(run),
         "--set", f"train.optimizer.learning_rate={rate}"], env=ENV, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for rate in rates]
    outputs = [process.communicate(timeout=300) for process in processes]
    codes = [process.returncode for process in processes]
    assert sorted(codes) == [0, 1], outputs
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    assert outputs[loser][1] == (f"blockbuilder train: error: {run} holds a run already: continue it with --resume, "
                                 "or choose another --output\n")
    resolved = yaml.safe_load((run / "resolved.yaml").read_text())
    assert resolved["train"]["optimizer"]["learning_rate"] == float(rates[winner])
    assert json.loads((run / "metrics.json").read_text())["epochs_completed"] == 1


# --------------------------------------------------------------------------- item 2: many classes, bounded outputs


def test_per_class_outputs_of_many_classes_are_bounded_and_the_report_says_so(tmp_path: Path, cli) -> None:
    """Issue 23: 10,000 classes made a 200 MB confusion_matrix.csv and a 7.4 GB peak (a dense 10,000 x
    10,000 matrix, its copy, a Python loop over its 10^8 cells, the CSV text and the picture)."""
    import tracemalloc

    from blockbuilder.training.evaluation import MAX_CLASS_TABLES, Predictions, per_class, write_outputs

    classes = 10_000
    labels = np.arange(40) % 20
    probabilities = np.full((len(labels), classes), 1e-6)
    probabilities[np.arange(len(labels)), (labels + (labels % 2)) % 20] = 0.9  # the odd classes: the next one
    results = Predictions(labels, probabilities)
    names = [f"c{i}" for i in range(classes)]
    tracemalloc.start()
    found = per_class(results, names)
    write_outputs(tmp_path, results, names)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert peak < 50 * 2**20, f"{peak:,} bytes"
    assert found["per_class"] == []
    assert found["per_class_omitted"] == (f"10,000 classes, more than {MAX_CLASS_TABLES:,}: no per-class table, "
                                          "confusion_matrix.csv or confusion_matrix.png")
    assert found["most_confused"][:2] == [{"true": "c1", "predicted": "c2", "count": 2},
                                          {"true": "c3", "predicted": "c4", "count": 2}]
    assert found["top5_accuracy"] == 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no matrix; nothing misclassified was kept
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.5, **found}}))
    code, out, err = cli("report", tmp_path / "run")
    assert code == 0 and err == ""
    assert "per class: 10,000 classes, more than 1,000: no per-class table" in out
    assert "per_class_omitted" not in out


def test_up_to_the_bound_every_class_has_its_row_and_the_matrix_is_written(tmp_path: Path) -> None:
    from blockbuilder.training.evaluation import MAX_CLASS_TABLES, Predictions, per_class, write_outputs

    labels = np.arange(MAX_CLASS_TABLES)
    results = Predictions(labels, np.eye(MAX_CLASS_TABLES)[(labels + 1) % MAX_CLASS_TABLES])
    names = [str(i) for i in range(MAX_CLASS_TABLES)]
    found = per_class(results, names)
    assert len(found["per_class"]) == MAX_CLASS_TABLES and "per_class_omitted" not in found
    write_outputs(tmp_path, results, names)
    rows = (tmp_path / "confusion_matrix.csv").read_text().splitlines()
    assert len(rows) == MAX_CLASS_TABLES + 1 and rows[1].split(",")[:3] == ["0", "0", "1"]


# --------------------------------------------------------------------------- item 3: images TensorFlow cannot decode


def test_gif_one_bit_bmp_and_cmyk_jpeg_in_a_folder_train_a_grey_model(tmp_path: Path, cli) -> None:
    """Issue 23: they passed the check, then TensorFlow failed in epoch 1 (``channels must be 0 or 3 for GIF``)."""
    from PIL import Image

    rng = np.random.default_rng(3)
    for index, name in enumerate(("cat", "dog")):
        folder = tmp_path / "photos" / name
        folder.mkdir(parents=True)
        for i in range(6):
            rgb = Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
            rgb.quantize(16).save(folder / f"{i}.gif")
            Image.fromarray(np.asarray(rgb)[..., index] > 127).save(folder / f"{i}.bmp")  # mode "1"
            rgb.convert("CMYK").save(folder / f"{i}.jpg")
    (tmp_path / "arch.yaml").write_text("input: [8, 8, 1]\nclasses: 2\nnetwork: [flatten, {dense: 2}]\n"
                                        "train: {dataset: folder:photos, epochs: 1}\n")
    code, out, err = cli("train", tmp_path / "arch.yaml", "-o", tmp_path / "run")
    assert (code, err) == (0, ""), err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert sum(metrics["examples"].values()) == 36
    code, out, err = cli("evaluate", tmp_path / "run", "--data", f"folder:{tmp_path / 'photos'}")
    assert (code, err) == (0, ""), err


# --------------------------------------------------------------------------- item 4: npz files


def _npz(path: Path, **arrays) -> None:
    with path.open("wb") as file:
        np.savez(file, **arrays)


X = np.zeros((4, 8, 8), np.uint8)
NPZ_CASES = {
    "npy": ("d.npz", None, "cannot read '{P}': a single array (.npy), not an .npz archive of arrays x and y "
                           "(numpy.savez(path, x=images, y=labels))"),
    "length": ("d.npz", {"x": X, "y": np.arange(3) % 2},
               "'{P}': array 'y' holds 3 labels but array 'x' holds 4 images"),
    "huge-label": ("d.npz", {"x": X, "y": np.array([0, 1, 0, 2**40])},
                   "'{P}': array 'y' holds label 1,099,511,627,776: labels are class indices from 0 to at most "
                   "999,999"),
    "negative": ("d.npz", {"x": X, "y": np.array([0, 1, -1, 1])},
                 "'{P}': array 'y' holds label -1: labels are class indices from 0 to at most 999,999"),
    "names": ("d.npz", {"x": X, "y": np.array([0, 1, 0, 1]), "x_test": X[:2], "y_test": np.array([0, 50]),
                        "class_names": np.array(["cat", "dog"])},
              "'{P}': array 'y_test' holds label 50, but array 'class_names' names 2 classes"),
    "bytes": ("d.npz", {"x": X, "y": np.array([b"a", b"b"] * 2)}, "'{P}': array 'y' holds bytes values, not integer "
                                                                   "class labels"),
    "one-hot": ("d.npz", {"x": X, "y": np.eye(2)[[0, 1, 0, 1]]},
                "'{P}': array 'y' has shape (4, 2), not one class label per image (class indices, not one-hot rows)"),
    "truncated": ("d.npz", "truncated", "cannot read '{P}': File is not a zip file"),
    "test-outside": ("t.npz", {"x": X, "y": np.array([0, 1, 0, 50])},
                     "'{P}': array 'y' holds label 50, outside the model's 2 classes"),
}


@pytest.mark.parametrize("case", NPZ_CASES)
def test_a_bad_npz_is_one_line_naming_the_file_and_the_array_before_training(tmp_path: Path, cli, case: str) -> None:
    name, arrays, message = NPZ_CASES[case]
    good = {"x": X, "y": np.array([0, 1, 0, 1])}
    _npz(tmp_path / "d.npz", **good)
    bad = tmp_path / name
    if arrays is None:
        np.save(tmp_path / "a.npy", X)
        (tmp_path / "a.npy").rename(bad)
    elif arrays == "truncated":
        data = (tmp_path / "d.npz").read_bytes()
        bad.write_bytes(data[:len(data) // 2])
    else:
        _npz(bad, **arrays)
    key = "test" if name == "t.npz" else "dataset"
    (tmp_path / "arch.yaml").write_text("input: [8, 8, 1]\nclasses: 2\nnetwork: [flatten, {dense: 2}]\n"
                                        f"train: {{dataset: npz:d.npz, test: npz:t.npz, epochs: 1}}\n")
    if name == "d.npz":
        _npz(tmp_path / "t.npz", **good)
    code, out, err = cli("train", tmp_path / "arch.yaml", "-o", tmp_path / "run")
    assert (code, out) == (1, "")
    assert err == f"blockbuilder train: error: train.{key}: {message.format(P=bad)}\n"
    assert not (tmp_path / "run").exists()  # refused before the run directory was made


# --------------------------------------------------------------------------- item 5: run files of report and evaluate


def _fake_run(run: Path, model: bytes | None = None) -> None:
    import io
    import zipfile

    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"class_names": ["0", "1"], "dataset": "digits",
                                                  "test": {"accuracy": 0.5}}))
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        archive.writestr("config.json", "{}")
    (run / "model.keras").write_bytes(stream.getvalue() if model is None else model)


@pytest.mark.parametrize("command", ["report", "evaluate"])
def test_a_fifo_metrics_json_is_refused_at_once(tmp_path: Path, command: str) -> None:
    run = tmp_path / "run"
    _fake_run(run)
    (run / "metrics.json").unlink()
    os.mkfifo(run / "metrics.json")
    result = subprocess.run([sys.executable, "-m", "blockbuilder", command, str(run)], env=ENV, capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stderr) == (
        1, f"blockbuilder {command}: error: {run / 'metrics.json'}: a named pipe (FIFO), not a file\n")


@pytest.mark.parametrize("content, why", [
    (b"", "cannot read model (not a valid .keras archive)"),
    (b"PK\x03\x04 half an archive", "cannot read model (not a valid .keras archive)"),
    ("fifo", "a named pipe (FIFO), not a file"),
])
def test_evaluate_refuses_a_bad_model_keras_before_tensorflow(tmp_path: Path, content: bytes | str, why: str) -> None:
    run = tmp_path / "run"
    _fake_run(run, content if isinstance(content, bytes) else b"")
    if content == "fifo":
        (run / "model.keras").unlink()
        os.mkfifo(run / "model.keras")
    code = ("import sys\nfrom blockbuilder.cli.main import main\n"
            f"code = main(['evaluate', {str(run)!r}])\nprint(code, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["1", "False"], result.stderr
    assert result.stderr == f"blockbuilder evaluate: error: {run / 'model.keras'}: {why}\n"
