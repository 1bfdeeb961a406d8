"""Defaults that work on small data (issue 11, item 1): a user's own small residual net with BatchNorm
on 3 classes of simple shapes, ~100 images each, default ``train:`` settings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

SMALL_RESNET = """\
name: small_resnet
input: [32, 32, 3]
classes: 3
defaults:
  conv: {norm: batchnorm, activation: relu, use_bias: false}
network:
  - conv: 16
  - residual:
      body:
        - conv: 16
        - conv: {filters: 16, activation: none}
      after: relu
  - residual:
      body:
        - conv: {filters: 32, stride: 2}
        - conv: {filters: 32, activation: none}
      after: relu
  - global_avg_pool
  - dense: {units: $classes, activation: softmax}
train:
  dataset: npz:data/shapes.npz
  epochs: 10
"""


def shapes(per_class: int = 100, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """White circles, squares and triangles of random size and place on black, as RGB."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(3):
        for _ in range(per_class):
            image = Image.new("L", (size, size), 0)
            draw = ImageDraw.Draw(image)
            r = int(rng.integers(7, 12))
            cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
            if label == 0:
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
            elif label == 1:
                draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=255)
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=255)
            images.append(np.stack([np.asarray(image)] * 3, -1))
            labels.append(label)
    return np.stack(images), np.array(labels)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A user's folder: their architecture file, and their data in a sub-folder."""
    root = tmp_path_factory.mktemp("project")
    (root / "data").mkdir()
    x, y = shapes()
    np.savez(root / "data" / "shapes.npz", x=x, y=y, class_names=np.array(["circle", "square", "triangle"]))
    (root / "small_resnet.yaml").write_text(textwrap.dedent(SMALL_RESNET))
    return root


def test_small_residual_net_with_batchnorm_learns_with_default_settings(project, capsys):
    import blockbuilder

    run = blockbuilder.train(project / "small_resnet.yaml", output=project / "runs" / "defaults")
    assert run.metrics["examples"] == {"train": 216, "validation": 24, "test": 60}
    assert run.metrics["epochs_completed"] == 10
    assert run.metrics["test"]["accuracy"] >= 0.9, run.history
    assert run.history[-1]["val_accuracy"] >= 0.9
    assert "near chance" not in capsys.readouterr().out


def test_validation_at_chance_while_training_climbs_is_reported(project, capsys):
    """Validation images labelled unlike the training images (one of the two causes the warning names):
    whatever the model learns, 150 images with permuted labels keep validation accuracy near chance.
    (Stale BatchNorm statistics, the other cause, put 24 validation images anywhere from 0.33 to 0.54
    depending on the number of threads TensorFlow ran on: too fragile to test the warning with.)"""
    import blockbuilder

    x, y = shapes(per_class=50, seed=1)
    mislabelled = np.random.default_rng(1).permutation(y)
    np.savez(project / "data" / "mislabelled.npz", x=x, y=mislabelled,
             class_names=np.array(["circle", "square", "triangle"]))
    run = blockbuilder.train(project / "small_resnet.yaml", output=project / "runs" / "stale", epochs=3,
                             overrides={"train.validation": f"npz:{project / 'data' / 'mislabelled.npz'}"})
    out = capsys.readouterr().out
    assert run.metrics["examples"]["validation"] == 150
    assert max(row["val_accuracy"] for row in run.history) <= 0.5 and run.history[-1]["accuracy"] >= 0.8
    warnings = [line for line in out.splitlines() if "near chance" in line]
    assert len(warnings) == 1, out  # said once, not every epoch
    assert "validation accuracy has stayed near chance (0.33) for 3 epochs" in warnings[0]
    assert "recalibrate_batchnorm" in warnings[0] and "labelled like the training images" in warnings[0]


def test_zoo_recipes_keep_the_moving_averages():
    """``auto`` re-estimates only when an epoch is shorter than the averages' span: never for the
    zoo's recipes on their data sets (CIFAR: 351 steps of 128 per epoch)."""
    import keras

    from blockbuilder.training.batchnorm import needs_recalibration

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    assert needs_recalibration(model, 351, "auto") is False
    assert needs_recalibration(model, 6, "auto") is True
    assert needs_recalibration(model, 6, "never") is False
    plain = keras.Model(inputs, keras.layers.Flatten()(inputs))
    assert needs_recalibration(plain, 6, "always") is False
