"""``tfds:NAME[:SPLIT]``: a TensorFlow Datasets set, read as NumPy arrays (it needs TensorFlow installed).

Its own ``validation`` split serves when it has one (and no ``SPLIT`` is named), else the last
``validation_split`` of the training split; its ``test`` split, else the validation images. The
class names are known once the set's info is loaded, so ``classes: auto`` cannot count them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from blockbuilder.training.sources.registry import Kind, Part, Source, error, images_array, register_kind


def _builder(name: str, key: str) -> Any:
    try:
        import tensorflow  # noqa: F401  (tensorflow_datasets reads through it)
        import tensorflow_datasets as tfds
    except ImportError:
        raise error(f"tfds:{name} needs TensorFlow and tensorflow-datasets "
                    "(pip install tensorflow tensorflow-datasets), or use folder: or npz:", key) from None
    try:
        builder = tfds.builder(name)
        builder.download_and_prepare()
    except Exception as problem:  # tfds raises many types: offline, unknown name, bad config
        message = str(problem).strip().splitlines()[0] if str(problem).strip() else type(problem).__name__
        raise error(f"tfds:{name}: {message}", key) from None
    return builder


def _arrays(builder: Any, split: str, shape: Any) -> tuple[np.ndarray, np.ndarray]:
    """A split's images (resized to the model's size when the set's sizes vary) and labels."""
    import tensorflow_datasets as tfds

    pairs = list(tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)))
    images, labels = [pair[0] for pair in pairs], np.asarray([pair[1] for pair in pairs], np.int64)
    if len({image.shape for image in images}) > 1 and shape is not None:
        from PIL import Image

        images = [np.asarray(Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).resize(
            (shape[1], shape[0]), Image.Resampling.BILINEAR)).reshape(shape[0], shape[1], -1) for image in images]
    channels = builder.info.features["image"].shape[-1] or 3
    stacked = np.stack(images) if images else np.zeros((0, 1, 1, channels), np.uint8)
    return stacked, labels


def read(spec: str, key: str, shape: Any) -> Source:
    name, _, split = spec.partition(":")
    builder = _builder(name, key)
    info = builder.info
    available = set(info.splits.keys())
    wanted = {"train": split or "train"}
    if "validation" in available and not split:
        wanted["validation"] = "validation"
    if "test" in available:
        wanted["test"] = "test"
    parts = {}
    for role, chosen in wanted.items():
        x, y = _arrays(builder, chosen, shape)
        parts[role] = Part(y, images=images_array(x, f"tfds:{spec}", key, shape))
    label = info.features["label"]
    return Source(f"tfds:{spec}", list(label.names), parts, channels=info.features["image"].shape[-1])


def splits(source: Source, validation_split: float) -> dict[str, Part]:
    """The last ``validation_split`` of the training split for validation, when the set has none; its
    ``test`` split, else the validation images."""
    parts = dict(source.parts)
    if "validation" not in parts:
        train = parts["train"]
        keep = round(len(train) * (1 - validation_split))
        parts["train"], parts["validation"] = train.take(np.arange(keep)), train.take(np.arange(keep, len(train)))
    parts.setdefault("test", parts["validation"])
    return {role: parts[role] for role in ("train", "validation", "test")}


TFDS = register_kind(Kind("tfds", "tfds:NAME[:SPLIT]", read, role=False, splits=splits))
