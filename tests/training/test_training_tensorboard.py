"""TensorBoard logs (issue 11, item 8): one event file per split per run, resumed or not, read back with
TensorBoard's own reader (``pip install 'blockbuilder[tensorboard]'``)."""

from __future__ import annotations

import pytest

from blockbuilder.training.outputs import EVENT_FILE, write_tensorboard

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="TensorBoard is not installed (pip install 'blockbuilder[tensorboard]')")


def history(epochs: int) -> list[dict]:
    return [{"epoch": e, "loss": 1.0 / e, "accuracy": 0.5 + e / 100, "val_loss": 2.0 / e,
             "val_accuracy": 0.4 + e / 100, "seconds": 1.5, "images_per_second": 800.0} for e in range(1, epochs + 1)]


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    reader = event_accumulator.EventAccumulator(str(folder))
    reader.Reload()
    return {tag: [(event.step, event.value) for event in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]}


def test_each_split_has_one_event_file_with_every_epoch_even_after_a_resume(tmp_path):
    logs = tmp_path / "logs"
    write_tensorboard(logs, history(2), started=1000.0)  # the run, killed after epoch 2
    write_tensorboard(logs, history(3), started=2000.0)  # resumed: epoch 3
    for split in ("train", "validation"):
        assert [p.name for p in (logs / split).iterdir()] == [EVENT_FILE]
    train, validation = scalars(logs / "train"), scalars(logs / "validation")
    assert sorted(train) == ["epoch_accuracy", "epoch_loss"] and sorted(validation) == sorted(train)
    assert [step for step, _ in train["epoch_loss"]] == [1, 2, 3]
    assert [value for _, value in train["epoch_loss"]] == pytest.approx([1.0, 0.5, 1 / 3])
    assert [step for step, _ in validation["epoch_accuracy"]] == [1, 2, 3]
    assert [value for _, value in validation["epoch_accuracy"]] == pytest.approx([0.41, 0.42, 0.43])
