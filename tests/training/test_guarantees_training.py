"""Issue 19, items 8 and 10: a data set whose classes the network cannot output is refused before
anything is built, at the line of the units; many ``train.phases`` cost the same each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DIGITS = "0, 1, 2, 3, 4 and 5 more"


def _head(units: int, dataset: str = "digits", classes: str = "") -> str:
    data = f"train:\n  dataset: {dataset}\n  epochs: 1\n" if dataset else ""
    return (f"extends: lenet5\nname: small\n{classes}"
            f"head: [flatten, dense: {{units: {units}, activation: softmax}}]\n{data}")


def _units_error(path: Path, line: int, units: int, dataset: str, count: int, listed: str) -> str:
    return (f"{path}:{line}:17: network[4].sequence.body[1]: the network ends in {units} units but train.dataset "
            f"'{dataset}' has {count} classes ({listed}); give its last layer {count} units\n")


# -- 8. the data set's classes against the network's outputs ---------------------------------------


def test_a_head_of_5_on_the_digits_is_refused_by_validate_at_its_units(cli, write):
    path = write(_head(5))
    assert cli("validate", path) == (1, "", _units_error(path, 3, 5, "digits", 10, DIGITS))


def test_a_head_of_5_on_the_digits_is_refused_by_train_before_any_building(cli, write, tmp_path):
    path = write(_head(5, dataset=""))  # the default data set, digits
    code, out, err = cli("train", path, "--output", tmp_path / "run")
    assert (code, err) == (1, _units_error(path, 3, 5, "digits", 10, DIGITS))
    assert not (tmp_path / "run").exists() and "Traceback" not in err


def test_classes_written_right_do_not_hide_a_head_of_other_units(cli, write):
    path = write(_head(5, classes="classes: 10\n"))
    assert cli("validate", path) == (1, "", _units_error(path, 4, 5, "digits", 10, DIGITS))


@pytest.mark.parametrize("units", [2, 4])
def test_an_npz_and_a_folder_are_checked_against_the_units_too(cli, write, tmp_path, units):
    np.savez(tmp_path / "three.npz", x=np.zeros((30, 8, 8)), y=np.arange(30) % 3)
    for name in ("a", "b", "c"):
        (tmp_path / "photos" / name).mkdir(parents=True)
    for dataset in ("npz:three.npz", "folder:photos"):
        path = write(_head(units, dataset, classes="classes: 3\n"))
        shown = f"{dataset.partition(':')[0]}:{tmp_path / dataset.partition(':')[2]}"
        listed = "0, 1, 2" if dataset.startswith("npz") else "a, b, c"
        assert cli("validate", path) == (1, "", _units_error(path, 4, units, shown, 3, listed))


def test_the_written_classes_are_still_named_first(cli, write):
    path = write(_head(5, classes="classes: 5\n").replace("units: 5", "units: $classes"))
    code, out, err = cli("validate", path)
    assert code == 1 and err == (f"{path}:3:10: classes: the model has 5 classes but train.dataset 'digits' has 10 "
                                 f"({DIGITS}); write classes: 10, or classes: auto\n")


def test_a_tfds_set_is_checked_against_the_units_before_building(cli, write, tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from blockbuilder.training import phases

    def never(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(phases.Phases, "build", never)
    path = write(_head(5, "tfds:mnist", classes="classes: 10\n"))
    with tfds.testing.mock_data(num_examples=12):
        code, out, err = cli("train", path, "--output", tmp_path / "run")
    assert code == 1 and "\n" not in err.rstrip("\n") and "Traceback" not in err
    assert "data set 'tfds:mnist' has 10 classes but the model has 5" in err
    assert not (tmp_path / "run").exists()


# -- 10. many phases ---------------------------------------------------------------------------------


PHASED = """\
extends: lenet5
name: phased
train:
  dataset: digits
  batch_size: 128
  precision: float32
  deterministic: true
  seed: 0
  phases:
    - {epochs: 1}
    - {epochs: 1}
    - {epochs: 1, optimizer: {learning_rate: 5.0e-4}}
    - {epochs: 1, freeze: [conv1]}
    - {epochs: 1, optimizer: {learning_rate: 2.0e-4}}
"""


@pytest.fixture(scope="module")
def phased(tmp_path_factory):
    """Five phases of one epoch, two of which change what trains; the compilations counted."""
    import keras

    import blockbuilder

    work = tmp_path_factory.mktemp("phased")
    (work / "phased.yaml").write_text(PHASED)
    compiles: list[int] = []
    original = keras.Model.compile

    def counted(self, *args, **kwargs):
        compiles.append(1)
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.Model, "compile", counted)
        run = blockbuilder.train(work / "phased.yaml", output=work / "run")
    return work, run, len(compiles)


def test_phases_that_change_only_the_learning_rate_keep_the_compiled_step(phased):
    """Item 10: each compilation traces the train step again, and TensorFlow keeps every trace (about
    10 MB a phase for LeNet-5); a phase that freezes the same blocks with the same optimizer needs none."""
    work, run, compiles = phased
    assert [row["phase"] for row in run.history] == [1, 2, 3, 4, 5]
    assert compiles == 3  # phase 1; phase 4 freezes conv1; phase 5 unfreezes it


def test_a_kept_step_trains_as_a_fresh_compilation_does(phased, monkeypatch):
    """A phase still starts with a fresh optimizer: the same weights as compiling every phase."""
    import blockbuilder
    from blockbuilder.training import phases

    work, run, _ = phased
    monkeypatch.setattr(phases, "_fits_compiled", lambda *args: False)
    every = blockbuilder.train(work / "phased.yaml", output=work / "every")
    assert every.metrics["weights_sha256"] == run.metrics["weights_sha256"]
    assert [row["loss"] for row in every.history] == [row["loss"] for row in run.history]


def test_resume_at_a_kept_phase_boundary_is_exactly_once(phased):
    import blockbuilder

    work, run, _ = phased
    stopped = blockbuilder.train(work / "phased.yaml", output=work / "stopped", on_epoch_end=lambda e, logs: e == 2)
    assert stopped.metrics["epochs_completed"] == 2
    last = blockbuilder.train(work / "phased.yaml", output=work / "stopped", resume=True)
    assert last.metrics["weights_sha256"] == run.metrics["weights_sha256"]


def test_more_phases_than_the_limit_are_refused_at_their_line(cli, write):
    """What stays per phase that changes what trains (a compilation TensorFlow keeps: about 10 MB and
    a second for LeNet-5) is bounded: at most MAX_PHASES phases."""
    from blockbuilder.training.spec import MAX_PHASES

    many = ", ".join(["{epochs: 1}"] * (MAX_PHASES + 1))
    path = write(f"extends: lenet5\ntrain:\n  phases: [{many}]\n")
    code, out, err = cli("validate", path)
    assert (code, out) == (1, "")
    assert err == (f"{path}:3:11: train.phases: at most {MAX_PHASES} phases, got {MAX_PHASES + 1} (each phase that "
                   f"changes what trains or the optimizer compiles the model again, and the run keeps every "
                   f"compilation)\n")
    code, out, err = cli("validate", write(f"extends: lenet5\ntrain:\n  phases: [{many[:-13]}]\n", "ok.yaml"))
    assert (code, err) == (0, "")
