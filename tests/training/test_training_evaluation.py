"""Per-class results (issue 11, item 8): precision, recall, F1, support, top-5, most confused pairs,
the confusion matrix files and ``blockbuilder report``."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from blockbuilder.training.evaluation import Predictions, per_class, write_outputs


def results(labels: list[int], predicted: list[int], classes: int) -> Predictions:
    probabilities = np.full((len(labels), classes), 0.01)
    probabilities[np.arange(len(labels)), predicted] = 0.9
    return Predictions(np.array(labels), probabilities)


def test_precision_recall_f1_and_support_per_class():
    found = per_class(results([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 0, 2], 3), ["cat", "dog", "fox"])
    assert found["per_class"] == [
        {"class": "cat", "precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "support": 3},
        {"class": "dog", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        {"class": "fox", "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    ]
    assert found["most_confused"] == [{"true": "cat", "predicted": "dog", "count": 1},
                                      {"true": "dog", "predicted": "cat", "count": 1}]
    assert "top5_accuracy" not in found  # 3 classes: top-5 says nothing


def test_top5_accuracy_when_there_are_more_than_5_classes():
    probabilities = np.tile(np.arange(8, dtype=float)[::-1], (4, 1))  # ranks: 0 > 1 > ... > 7
    found = per_class(Predictions(np.array([0, 4, 5, 7]), probabilities), [str(i) for i in range(8)])
    assert found["top5_accuracy"] == 0.5  # 0 and 4 are in the top five, 5 and 7 are not


def test_confusion_matrix_files(tmp_path):
    write_outputs(tmp_path, results([0, 1, 1], [0, 0, 1], 2), ["a", "b"])
    assert (tmp_path / "confusion_matrix.csv").read_text() == "true \\ predicted,a,b\na,1,0\nb,1,1\n"
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "misclassified.png").exists()  # no images were kept


def test_report_prints_a_run_again(tmp_path, cli):
    metrics = {"test": {"accuracy": 0.75, "loss": 0.5, **per_class(results([0, 0, 1, 1], [0, 1, 1, 1], 2),
                                                                     ["cat", "dog"])},
               "epochs_completed": 3, "stopped": "completed", "best_epoch": 2, "dataset": "folder:photos",
               "examples": {"test": 4}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "confusion_matrix.png").write_bytes(b"\x89PNG")
    code, out, err = cli("report", tmp_path)
    assert code == 0, err
    assert "test (4 images): accuracy 0.7500  loss 0.5000" in out
    assert re.search(r"│ cat +│ +1.0000 │ +0.5000 │ +0.6667 │ +2 │", out), out
    assert "most confused: cat -> dog (1)" in out
    assert str(tmp_path / "confusion_matrix.png") in out
    code, out, _ = cli("report", tmp_path, "--json")
    assert json.loads(out)["test"]["per_class"][1]["class"] == "dog"


@pytest.mark.parametrize("content, expected", [(None, "metrics.json: missing"), ("{", "metrics.json: not readable"),
                                               ("[]", "not the metrics of a blockbuilder run")])
def test_report_of_an_unfinished_or_foreign_directory_is_one_line(tmp_path, cli, content, expected):
    if content is not None:
        (tmp_path / "metrics.json").write_text(content)
    code, out, err = cli("report", tmp_path)
    assert code == 1 and out == "" and len(err.splitlines()) == 1 and expected in err
