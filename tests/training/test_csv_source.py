"""``csv:PATH``, the data source kind added as one file: rows of image paths and labels, errors at file:line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from blockbuilder.errors import DataError
from blockbuilder.training import pipeline, sources

LABELS = ["cat", "dog", "owl"]


def png(path: Path, value: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


def table(root: Path, rows: list[str], header: str = "path,label") -> Path:
    """``root/labels.csv`` with ``rows`` under ``header``; every image a row names under ``root/img`` exists."""
    root.mkdir(parents=True, exist_ok=True)
    for row in rows:
        name = row.split(",")[0]
        if name.startswith("img/"):
            png(root / name)
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return root / "labels.csv"


def test_a_csv_of_paths_and_labels_is_a_data_set(tmp_path: Path) -> None:
    rows = [f"img/{label}{i}.png,{label}" for label in ("dog", "cat") for i in range(10)]
    path = table(tmp_path, rows)

    splits = pipeline.load_splits(f"csv:{path}", (8, 8, 3), 2)

    assert splits.class_names == ["cat", "dog"]
    assert splits.sizes == {"train": 14, "validation": 2, "test": 4}
    assert sources.class_names_of(f"csv:{path}") == ["cat", "dog"]


def test_a_split_column_gives_the_splits(tmp_path: Path) -> None:
    rows = [f"img/t{i}.png,{LABELS[i % 2]},train" for i in range(6)] + ["img/v.png,cat,val", "img/e.png,dog,test"]
    path = table(tmp_path, rows, header="path,label,split")

    splits = pipeline.load_splits(f"csv:{path}", (8, 8, 3), 2)

    assert splits.sizes == {"train": 6, "validation": 1, "test": 1}


@pytest.mark.parametrize("rows, header, line, message", [
    (["img/a.png"], "path,label", 2, "1 columns, the first row names 2 (path,label)"),
    (["img/a.png,cat", "img/b.png,"], "path,label", 3, "empty label"),
    (["missing.png,cat"], "path,label", 2, "image 'missing.png' does not exist"),
    (["notes.txt,cat"], "path,label", 2, "'notes.txt' is not an image file"),
    (["img/a.png,cat,later"], "path,label,split", 2, "split 'later' is not train, val, validation, valid or test"),
    (["img/a.png,cat"], "file,class", 1, "the first row names the columns path,label[,split]"),
])
def test_a_bad_row_is_one_line_naming_file_and_line(tmp_path: Path, rows, header, line, message) -> None:
    path = table(tmp_path, rows, header)

    with pytest.raises(DataError) as caught:
        sources.read_source(f"csv:{path}")

    assert str(caught.value).startswith(f"train.dataset: {path}:{line}: {message}")
    assert "\n" not in str(caught.value)


def test_train_reports_a_bad_row_at_its_line_before_tensorflow(cli, tmp_path: Path) -> None:
    path = table(tmp_path, ["img/a.png,cat", "img/b.png"])
    arch = tmp_path / "arch.yaml"
    arch.write_text("extends: lenet5\ninput: [32, 32, 3]\nclasses: 2\ntrain: {dataset: 'csv:labels.csv'}\n")

    code, out, err = cli("train", arch, "--output", tmp_path / "run")

    assert (code, out) == (1, "")
    assert err == f"blockbuilder train: error: train.dataset: {path}:3: 1 columns, the first row names 2 (path,label)\n"
    assert not (tmp_path / "run").exists()


def test_classes_auto_counts_the_labels_of_a_csv(cli, tmp_path: Path) -> None:
    table(tmp_path, [f"img/{i}.png,{LABELS[i % 3]}" for i in range(6)])
    arch = tmp_path / "arch.yaml"
    arch.write_text("extends: lenet5\ninput: [32, 32, 1]\nclasses: auto\ntrain: {dataset: 'csv:labels.csv'}\n")

    code, out, err = cli("validate", arch)

    assert (code, err) == (0, "") and "-> output [3]" in out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(LABELS), st.sampled_from(["train", "val", "test", ""]),
                          st.booleans()), min_size=1, max_size=12))
def test_any_generated_csv_is_read_or_refused_at_a_line(tmp_path: Path, rows) -> None:
    """Each row: a label, a split (``""`` a bad row: no split) and whether its image exists."""
    root = tmp_path / str(abs(hash(tuple(rows))))
    lines = []
    for i, (label, split, exists) in enumerate(rows):
        name = f"img/{i}.png" if exists else f"gone/{i}.png"
        lines.append(f"{name},{label},{split}" if split else f"{name},{label}")
    path = table(root, lines, header="path,label,split")
    bad = [i for i, (_, split, exists) in enumerate(rows) if not split or not exists]
    if not bad and not any(split == "train" for _, split, _ in rows):
        with pytest.raises(DataError, match=r": no rows of training images$"):
            sources.read_source(f"csv:{path}")
        return
    if bad:
        with pytest.raises(DataError) as caught:
            sources.read_source(f"csv:{path}")
        assert str(caught.value).startswith(f"train.dataset: {path}:{bad[0] + 2}: ")
        assert "\n" not in str(caught.value)
        return
    read = sources.read_source(f"csv:{path}")
    assert read.class_names == sorted({label for label, _, _ in rows})
    assert sum(len(part) for part in read.parts.values()) == len(rows)
    for role, part in read.parts.items():
        assert [read.class_names[i] for i in part.labels] == [
            label for label, split, _ in rows if {"val": "validation"}.get(split, split) == role]


def test_evaluate_help_names_every_registered_kind(cli) -> None:
    """``evaluate --help`` writes the kinds out (so ``--help`` imports no NumPy); it names each one registered."""
    code, out, _ = cli("evaluate", "--help")
    assert code == 0
    text = " ".join(out.split())
    missing = [kind.form for kind in sources.kinds() if kind.form not in text]
    assert not missing, f"evaluate --help does not name {missing}"
