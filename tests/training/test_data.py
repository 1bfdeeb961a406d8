"""Data sources and the input pipeline (one for every backend): what the model is fed, and errors that name
data and model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from PIL import Image

from blockbuilder.errors import CommandError, DataError
from blockbuilder.training.pipeline import eval_batches, load_splits, train_batches
from blockbuilder.training.spec import TrainSpec


def _arrays(examples) -> tuple[np.ndarray, np.ndarray]:
    return examples.gather(np.arange(len(examples))), examples.labels


def test_digits_is_split_fixed_and_stratified_and_shaped_for_the_model():
    splits = load_splits("digits", (32, 32, 1), 10)
    assert splits.sizes == {"train": 1293, "validation": 144, "test": 360}
    assert splits.class_names == [str(i) for i in range(10)]
    x, y = _arrays(splits.test)
    assert x.shape == (360, 32, 32, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    from sklearn.datasets import load_digits

    per_class = np.bincount(load_digits().target)
    assert np.all(np.abs(np.bincount(y) - 0.2 * per_class) <= 1)  # stratified: 20 % of each class
    again = _arrays(load_splits("digits", (32, 32, 1), 10).test)
    np.testing.assert_array_equal(x, again[0])


def test_grey_digits_become_rgb_of_another_size():
    x, _ = _arrays(load_splits("digits", (20, 24, 3), 10).validation)
    assert x.shape[1:] == (20, 24, 3)
    np.testing.assert_array_equal(x[..., 0], x[..., 2])


def test_more_classes_in_data_than_in_model_is_an_error_naming_both():
    with pytest.raises(DataError) as caught:
        load_splits("digits", (32, 32, 1), 5)
    message = str(caught.value)
    assert isinstance(caught.value, CommandError) and "\n" not in message
    assert "'digits' has 10 classes but the model has 5" in message
    assert message.startswith("train.dataset: ")


def test_npz_source_with_rgb_images_feeds_a_grey_model(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.integers(0, 256, (60, 12, 12, 3), dtype=np.uint8),
             y=np.repeat(np.arange(3), 20))
    splits = load_splits(f"npz:{path}", (16, 16, 1), 3)
    assert splits.sizes == {"train": 43, "validation": 5, "test": 12}
    x, y = _arrays(splits.train)
    assert x.shape == (43, 16, 16, 1) and set(y) == {0, 1, 2}
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_npz_errors_name_file_and_model(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((10, 7)), y=np.zeros(10))
    with pytest.raises(DataError, match=r"shape \(7,\), not images .*model's input is \(8, 8, 1\)"):
        load_splits(f"npz:{path}", (8, 8, 1), 2)
    np.savez(path, images=np.zeros((10, 8, 8)))
    with pytest.raises(DataError, match="has no array 'x'"):
        load_splits(f"npz:{path}", (8, 8, 1), 2)
    with pytest.raises(DataError, match="cannot read"):
        load_splits(f"npz:{tmp_path / 'missing.npz'}", (8, 8, 1), 2)


def test_folder_source_one_sub_folder_per_class(tmp_path):
    for name, value in (("cats", 40), ("dogs", 200)):
        (tmp_path / name).mkdir()
        for i in range(10):
            image = np.full((10 + i, 14, 3), value, np.uint8)
            Image.fromarray(image).save(tmp_path / name / f"{i}.png")
    splits = load_splits(f"folder:{tmp_path}", (8, 8, 3), 2)
    assert splits.class_names == ["cats", "dogs"]
    assert sum(splits.sizes.values()) == 20
    parts = [_arrays(part) for part in (splits.train, splits.validation, splits.test)]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    assert x.shape == (20, 8, 8, 3)
    np.testing.assert_allclose(x[y == 0], 40 / 255, atol=1e-5)
    with pytest.raises(DataError, match="has 2 classes but the model has 1"):
        load_splits(f"folder:{tmp_path}", (8, 8, 3), 1)
    with pytest.raises(DataError, match="does not exist"):
        load_splits(f"folder:{tmp_path / 'nope'}", (8, 8, 3), 2)


def test_tfds_source_offline_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        splits = load_splits("tfds:mnist", (32, 32, 3), 10)
        x, y = _arrays(splits.train)
    assert x.shape[1:] == (32, 32, 3) and x.dtype == np.float32
    assert splits.class_names[:3] == ["0", "1", "2"]
    assert 0.0 <= x.min() and x.max() <= 1.0
    with tfds.testing.mock_data(num_examples=12):
        with pytest.raises(DataError, match="tfds:mnist.* has 10 classes but the model has 4"):
            load_splits("tfds:mnist", (28, 28, 1), 4)


def test_unknown_tfds_name_is_one_line():
    with pytest.raises(DataError) as caught:
        load_splits("tfds:no_such_dataset_xyz", (8, 8, 1), 2)
    assert str(caught.value).startswith("train.dataset: tfds:no_such_dataset_xyz") and "\n" not in str(
        caught.value)


AUGMENT = TrainSpec.model_validate({"augmentation": [
    "flip", {"random_crop": {"padding": 4}}, "rotation", "zoom", "translation", "contrast"]}).augmentation


def _epoch(splits, epoch, seed=1, augmentation=AUGMENT):
    ds = train_batches(splits.train, 64, seed=seed, epoch=epoch, augmentation=augmentation,
                       input_shape=(32, 32, 1))
    return list(ds)


def test_training_batches_are_a_pure_function_of_seed_and_epoch():
    splits = load_splits("digits", (32, 32, 1), 10)
    first, again, other = _epoch(splits, 3), _epoch(splits, 3), _epoch(splits, 4)
    assert len(first) == 21 and first[0][0].shape == (64, 32, 32, 1)
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first[0][1], other[0][1])
    assert all(0.0 <= x.min() and x.max() <= 1.0 for x, _ in first)
    plain = _epoch(splits, 3, augmentation=[])
    np.testing.assert_array_equal(plain[0][1], first[0][1])  # same order, augmented pixels
    assert not np.allclose(plain[0][0], first[0][0])


def test_evaluation_batches_keep_order():
    splits = load_splits("digits", (32, 32, 1), 10)
    labels = np.concatenate([y for _, y in eval_batches(splits.test, 100)])
    np.testing.assert_array_equal(labels, _arrays(splits.test)[1])


def test_train_spec_is_importable_without_tensorflow():
    code = "import sys, blockbuilder.training.spec; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(("cached", "augment"), [(True, True), (True, False), (False, True)],
                         ids=["arrays", "arrays-plain", "files"])
def test_tensorflow_is_fed_exactly_the_batches_of_the_one_pipeline(tmp_path, cached, augment):
    """``feed`` on TensorFlow (a tf.data map) gives the very batches the PyDataset gives JAX and PyTorch,
    the last one partial."""
    pytest.importorskip("tensorflow")
    from blockbuilder.training import pipeline

    for label in range(2):
        (tmp_path / str(label)).mkdir()
        for i in range(10):
            Image.fromarray(np.full((6, 6, 3), 10 * i + 60 * label, np.uint8)).save(tmp_path / str(label) / f"{i}.png")
    splits = load_splits(f"folder:{tmp_path}", (8, 8, 3), 2)
    train = splits.train.cache() if cached else splits.train
    assert splits.sizes["train"] == 14  # batches of 4, 4, 4 and 2
    batches = train_batches(train, 4, seed=3, epoch=2, augmentation=AUGMENT if augment else (),
                            input_shape=(8, 8, 3), workers=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline.keras.backend, "backend", lambda: "tensorflow")
        fed = [(x.numpy(), y.numpy()) for x, y in pipeline.feed(batches)]
    assert len(fed) == len(batches) == 4 and len(fed[-1][1]) == 2
    whole = train_batches(train, 4, seed=3, epoch=2, input_shape=(8, 8, 3), drop_remainder=True, workers=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline.keras.backend, "backend", lambda: "tensorflow")
        spec, partial = pipeline.feed(whole).element_spec, pipeline.feed(batches).element_spec
    # whole batches only (as training has them): a static batch dimension, as tf.data's batch(drop_remainder) gives
    assert (spec[0].shape.as_list(), spec[1].shape.as_list()) == ([4, 8, 8, 3], [4])
    assert partial[0].shape.as_list() == [None, 8, 8, 3]
    for (x1, y1), (x2, y2) in zip(fed, batches):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
