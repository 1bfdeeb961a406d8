"""Data as people lay it out: split sub-folders, own validation and test sets, classes checked against the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from blockbuilder.errors import DataError
from blockbuilder.training import pipeline, sources
from conftest import run_process


def images(folder: Path, counts: dict[str, int], size: int = 8) -> None:
    """``counts[name]`` small PNGs in ``folder/name``, each class a different grey."""
    for index, (name, count) in enumerate(counts.items()):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            value = 40 + 60 * index + i % 3
            Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(folder / name / f"{i}.png")


def layout(root: Path, splits: dict[str, dict[str, int]]) -> Path:
    for split, counts in splits.items():
        images(root / split, counts)
    return root


SHAPES = {"cats": 12, "dogs": 10, "owls": 8}


def test_train_val_test_sub_folders_are_the_splits_not_classes(tmp_path: Path) -> None:
    root = layout(tmp_path / "photos", {"train": SHAPES, "val": {"cats": 3, "dogs": 2, "owls": 2},
                                        "test": {"cats": 4, "dogs": 4}})
    splits = pipeline.load_splits(f"folder:{root}", (8, 8, 3), 3)

    assert splits.class_names == ["cats", "dogs", "owls"]
    assert splits.sizes == {"train": 30, "validation": 7, "test": 8}


def test_a_train_folder_alone_holds_out_validation_and_test(tmp_path: Path) -> None:
    root = layout(tmp_path / "photos", {"train": {"cats": 20, "dogs": 20}})
    splits = pipeline.load_splits(f"folder:{root}", (8, 8, 3), 2, validation_split=0.25)

    assert splits.class_names == ["cats", "dogs"]
    assert splits.sizes == {"train": 24, "validation": 8, "test": 8}


def test_split_folders_beside_class_folders_are_refused(tmp_path: Path) -> None:
    root = layout(tmp_path / "photos", {"train": {"cats": 2}})
    images(root, {"dogs": 2})

    with pytest.raises(DataError, match=r"mixes split folders \(train\) with class folders \(dogs\)"):
        sources.read_source(f"folder:{root}")


def test_a_validation_class_unknown_to_train_is_named(tmp_path: Path) -> None:
    root = layout(tmp_path / "photos", {"train": {"cats": 2}, "validation": {"cats": 1, "emus": 1}})

    with pytest.raises(DataError, match="has classes that train/ has not: emus"):
        sources.read_source(f"folder:{root}")


def test_own_validation_and_test_sources_replace_the_held_out_ones(tmp_path: Path) -> None:
    images(tmp_path / "train", {"cats": 10, "dogs": 10})
    images(tmp_path / "checked", {"dogs": 3})  # a subset of the classes: labels map by name
    images(tmp_path / "exam", {"cats": 2, "dogs": 5})
    splits = pipeline.load_splits(f"folder:{tmp_path / 'train'}", (8, 8, 3), 2,
                                  validation=f"folder:{tmp_path / 'checked'}", test=f"folder:{tmp_path / 'exam'}")

    assert splits.sizes["validation"] == 3 and splits.sizes["test"] == 7
    assert list(splits.validation.labels) == [1, 1, 1]  # dogs is class 1 of the training folder


def test_a_validation_source_with_an_unknown_class_is_refused(tmp_path: Path) -> None:
    images(tmp_path / "train", {"cats": 10, "dogs": 10})
    images(tmp_path / "other", {"emus": 2})

    with pytest.raises(DataError, match="train.validation: .* has classes the model was not trained on: emus"):
        pipeline.load_splits(f"folder:{tmp_path / 'train'}", (8, 8, 3), 2, validation=f"folder:{tmp_path / 'other'}")


NAMES = st.sampled_from(["train", "val", "validation", "test", "cats", "dogs", "Train", ".hidden"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.dictionaries(NAMES, st.dictionaries(st.sampled_from(["cats", "dogs", "x"]),
                                                   st.integers(0, 3), max_size=3), max_size=4))
def test_any_folder_tree_is_read_or_refused_in_one_line(tmp_path_factory, tree) -> None:
    root = tmp_path_factory.mktemp("tree")
    for top, inner in tree.items():
        (root / top).mkdir(exist_ok=True)
        images(root / top, inner, size=2)
    try:
        read = sources.read_source(f"folder:{root}")
    except DataError as error:
        assert "\n" not in str(error) and str(error).startswith("train.dataset: ")
        return
    files = sum(1 for _ in root.rglob("*.png") if not any(p.startswith(".") for p in _.relative_to(root).parts))
    assert sum(len(part) for part in read.parts.values()) == files
    assert all(int(part.labels.max(initial=0)) < len(read.class_names) for part in read.parts.values())


# --------------------------------------------------------------------------- the command line


ARCH = """\
name: shapes
input: [8, 8, 3]
{classes}
network:
  - conv: {{filters: 4, kernel: 3}}
  - global_avg_pool
  - dense: {{units: $classes, activation: softmax}}
train: {{dataset: "folder:photos", epochs: 1, batch_size: 8}}
"""


def project(tmp_path: Path, classes: str) -> Path:
    layout(tmp_path / "photos", {"train": SHAPES, "val": {"cats": 2, "dogs": 2, "owls": 2}})
    arch = tmp_path / "shapes.yaml"
    arch.write_text(ARCH.format(classes=classes))
    return arch


@pytest.mark.parametrize("classes", ["classes: auto", ""], ids=["auto", "left-out"])
def test_classes_auto_takes_the_count_from_the_folder(cli, tmp_path: Path, classes: str) -> None:
    code, out, err = cli("validate", project(tmp_path, classes))

    assert (code, err) == (0, "")
    assert "-> output [3]" in out


def test_a_class_count_that_differs_from_the_data_is_a_file_line_error(cli, tmp_path: Path) -> None:
    arch = project(tmp_path, "classes: 10")
    expected = (f"{arch}:3:10: classes: the model has 10 classes but train.dataset "
                f"'folder:{tmp_path / 'photos'}' has 3 (cats, dogs, owls); write classes: 3, or classes: auto\n")

    assert cli("validate", arch) == (1, "", expected)
    code, _, err = cli("train", arch, "--output", tmp_path / "run")
    assert (code, err) == (1, expected)
    assert not (tmp_path / "run").exists()


def test_lenet5_on_a_three_class_folder_is_refused_naming_both_numbers(cli, tmp_path: Path) -> None:
    images(tmp_path / "stripes", {"a": 2, "b": 2, "c": 2})
    code, _, err = cli("train", "lenet5", "--set", f"train.dataset=folder:{tmp_path / 'stripes'}",
                       "--output", tmp_path / "run")

    assert code == 1 and "the model has 10 classes but train.dataset" in err and "has 3 (a, b, c)" in err
    assert not (tmp_path / "run").exists()


def test_validate_reports_a_data_folder_that_does_not_exist(cli, tmp_path: Path) -> None:
    arch = tmp_path / "arch.yaml"
    arch.write_text(ARCH.format(classes="classes: 3"))

    code, out, err = cli("validate", arch)

    assert (code, out) == (1, "")
    assert err == f"{arch}:8:18: train.dataset: folder 'photos' ({tmp_path / 'photos'}) does not exist\n"


def test_training_on_split_folders_uses_their_sizes(tmp_path: Path) -> None:
    arch = project(tmp_path, "classes: auto")
    done = run_process("train", str(arch), "--output", str(tmp_path / "run"), cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert "24 train, 6 validation, 6 test images" in " ".join(done.stdout.split())
    assert "Traceback" not in done.stderr


def test_a_run_that_fails_before_its_first_epoch_leaves_no_directory(cli, tmp_path: Path) -> None:
    np.savez(tmp_path / "flat.npz", x=np.zeros((20, 7)), y=np.arange(20) % 10)  # labels fit, arrays are no images
    output = tmp_path / "new" / "runs" / "lenet5"

    code, _, err = cli("train", "lenet5", "--set", f"train.dataset=npz:{tmp_path / 'flat.npz'}", "--output", output)

    assert code == 1 and "has arrays of shape (7,), not images" in err
    assert not (tmp_path / "new").exists()


def test_classes_auto_on_a_data_set_it_cannot_count_is_a_file_line_error(cli, tmp_path: Path) -> None:
    arch = tmp_path / "arch.yaml"
    arch.write_text(ARCH.format(classes="classes: auto").replace('"folder:photos"', "tfds:mnist"))

    assert cli("validate", arch) == (1, "", f"{arch}:3:10: classes: classes: auto counts the classes of "
                                            f"train.dataset when it is digits, folder:PATH, npz:PATH or "
                                            f"csv:PATH; write the number for 'tfds:mnist'\n")


def test_a_tfds_validation_source_is_refused_naming_the_way(cli, tmp_path: Path) -> None:
    code, out, err = cli("validate", "lenet5", "--set", "train.validation=tfds:mnist")

    assert (code, out) == (1, "")
    assert ("validation must be a folder:PATH, npz:PATH or csv:PATH (a tfds data set brings its own validation "
            "split") in err
    assert err.count("\n") == 1 and "value error" not in err
