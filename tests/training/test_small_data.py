"""A small folder of one's own images trains well with the default settings: the scenario of
``bench/bench_small_data.py`` (3 classes x 100 PNG images of textures, a small BatchNorm net), in 5
epochs instead of 10 to stay fast.

An epoch of the 216 training images is 6 steps of 32. The old defaults (batch 32, learning rate
1e-3: 30 Adam steps in 5 epochs) scored 0.71-0.77 on 300 more images of the same kind (seeds 0-2);
the small-data defaults (batch 8, learning rate 3e-3: 27 steps an epoch) 0.82-0.86.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_small_data.py"


def _scenario() -> ModuleType:
    """The benchmark's data set and network (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_small_data", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_small_image_folder_with_batchnorm_learns_in_few_epochs_with_default_settings(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import blockbuilder

    scenario = _scenario()
    folder = scenario.make_folder(tmp_path / "images", per_class=100, size=32)
    architecture = tmp_path / "small_bn_net.yaml"
    architecture.write_text(scenario.ARCHITECTURE.format(size=32, folder=folder, epochs=5))

    run = blockbuilder.train(architecture, output=tmp_path / "run", overrides={"train.precision": "float32"})

    images, labels = scenario.make_images(100, 32, seed=1)  # 300 images the run never saw
    predicted = np.argmax(run.model.predict(images / 255.0, verbose=0), axis=1)
    accuracy = float(np.mean(predicted == labels))
    assert accuracy >= 0.80, (accuracy, run.metrics["test"]["accuracy"], run.history)
    assert run.metrics["examples"] == {"train": 216, "validation": 24, "test": 60}
    out = capsys.readouterr().out
    assert "small data set (216 training images, 6 steps of 32 an epoch): batch 8, learning rate 0.003" in out
    assert ": 5 epochs, batch 8, adam" in out


@pytest.mark.parametrize(("images", "written", "batch", "rate"), [
    (216, {}, 8, 3e-3),                                # 6 steps of 32, 27 of 8
    (500, {}, 16, 3e-3),                               # 15 steps of 32, 31 of 16
    (1293, {}, 32, 1e-3),                              # the digits: 40 steps of 32, unchanged
    (216, {"batch_size": 32}, 32, 1e-3),               # a written batch size is kept
    (216, {"optimizer": {"learning_rate": 1e-3}}, 32, 1e-3),  # so is a written optimizer
    (216, {"phases": [{"epochs": 2}]}, 32, 1e-3),      # and phases, which fine-tune
])
def test_small_data_defaults_apply_only_to_default_settings(images: int, written: dict[str, Any], batch: int,
                                                            rate: float) -> None:
    from blockbuilder.training.loop import small_data_defaults
    from blockbuilder.training.spec import TrainSpec

    chosen = small_data_defaults(TrainSpec.model_validate(written), images)
    assert (chosen.batch_size, chosen.optimizer.learning_rate) == (batch, rate)
