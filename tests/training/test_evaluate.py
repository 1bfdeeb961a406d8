"""``blockbuilder evaluate``: a finished run scored on its own test split again, and on other data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def test_evaluating_a_run_on_its_own_data_gives_its_test_results(cli, lenet5_run: Path, tmp_path: Path) -> None:
    code, out, err = cli("evaluate", lenet5_run, "-o", tmp_path / "again")

    assert (code, err) == (0, "")
    trained = json.loads((lenet5_run / "metrics.json").read_text())["test"]
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["examples"] == {"test": 360} and again["dataset"] == "digits"
    assert again["test"]["accuracy"] == pytest.approx(trained["accuracy"], abs=1e-6)
    assert again["test"]["per_class"] == trained["per_class"]
    written = {p.name for p in (tmp_path / "again").iterdir()}
    assert {"confusion_matrix.csv", "confusion_matrix.png", "metrics.json", "misclassified.png"} == written
    assert f"test (360 images): loss {trained['loss']:.4f}" in out


def digits_folder(root: Path, classes: dict[str, int]) -> Path:
    """PNGs of real digits, ``classes[name]`` of each (names are digit classes)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        images = digits.images[digits.target == int(name)][-count:]
        for i, image in enumerate(images):
            Image.fromarray((image * 255 / 16).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_a_folder_of_some_classes_is_scored_by_class_name(cli, lenet5_run: Path, tmp_path: Path) -> None:
    data = digits_folder(tmp_path / "new", {"3": 4, "7": 6})

    code, out, err = cli("evaluate", lenet5_run, "--data", f"folder:{data}", "-o", tmp_path / "scored", "--json")

    assert (code, err) == (0, "")
    metrics = json.loads(out)
    support = {row["class"]: row["support"] for row in metrics["test"]["per_class"]}
    assert metrics["examples"] == {"test": 10} and support["3"] == 4 and support["7"] == 6 and support["0"] == 0
    assert metrics == json.loads((tmp_path / "scored" / "metrics.json").read_text())


def test_an_output_that_holds_an_evaluation_is_refused_then_replaced_with_force(cli, lenet5_run, tmp_path) -> None:
    assert cli("evaluate", lenet5_run, "-o", tmp_path / "e")[0] == 0

    assert cli("evaluate", lenet5_run, "-o", tmp_path / "e") == (
        1, "", f"blockbuilder evaluate: error: {tmp_path / 'e'} holds an evaluation already; use --force to "
               f"replace it, or -o DIR\n")
    assert cli("evaluate", lenet5_run, "-o", tmp_path / "e", "--force")[0] == 0


@pytest.mark.parametrize("args, message", [
    (["nowhere"], "nowhere: no such run directory"),
    (["{run}", "--data", "folder:{tmp}/missing"], "--data: folder '{tmp}/missing' does not exist"),
    (["{run}", "--data", "photos"], "train.test: unknown data set 'photos' (use digits, tfds:NAME[:SPLIT], "
                                    "folder:PATH, npz:PATH or csv:PATH)"),
])
def test_bad_arguments_are_one_line_before_tensorflow(cli, lenet5_run, tmp_path, args, message) -> None:
    argv = [a.format(run=lenet5_run, tmp=tmp_path) for a in args]

    assert cli("evaluate", *argv) == (1, "", f"blockbuilder evaluate: error: {message.format(tmp=tmp_path)}\n")


def test_a_folder_with_a_class_the_run_does_not_know_is_one_line(cli, lenet5_run: Path, tmp_path: Path) -> None:
    data = digits_folder(tmp_path / "new", {"3": 2})
    (data / "cats").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / "cats" / "0.png")

    code, out, err = cli("evaluate", lenet5_run, "--data", f"folder:{data}", "-o", tmp_path / "x")

    assert (code, out) == (1, "")
    assert err.startswith("blockbuilder evaluate: error: train.test: ") and "classes the model was not trained " \
        "on: cats" in err and err.count("\n") == 1
