"""A source's train, validation and test parts for a model, whatever its kind.

A split the source does not have of its own is held out of its training images, stratified, with a
split that never depends on the training seed; ``train.validation`` and ``train.test`` replace
those splits with other sources' images.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from blockbuilder.text import plural
from blockbuilder.training.sources.registry import Part, Source, dataset_kind, error, get_kind, read_source

__all__ = ["SPLIT_SEED", "TEST_FRACTION", "check_model_fits", "complete", "role_part", "source_parts",
           "split_parts"]

TEST_FRACTION = 0.2
SPLIT_SEED = 0  # the train/validation/test split never depends on the training seed


def _held_out(labels: np.ndarray, index: np.ndarray, fraction: float, total: int) -> tuple[np.ndarray, np.ndarray]:
    """``index`` split in two, the second holding ``fraction`` of each class (a fixed split)."""
    from sklearn.model_selection import train_test_split

    try:
        rest, held = train_test_split(index, test_size=fraction, stratify=labels[index], random_state=SPLIT_SEED)
    except ValueError as problem:  # too few images of a class to split
        raise error(f"cannot split {plural(total, 'image')} into train, validation and test: {problem}") from None
    return rest, held


def complete(source: Source, validation_split: float) -> dict[str, Part]:
    """Train, validation and test parts: the source's own, the missing ones held out of ``train``.

    The test images (:data:`TEST_FRACTION` of each class) are held out first, then
    ``validation_split`` of the rest for validation.
    """
    parts = dict(source.parts)
    train = parts["train"]
    rest = np.arange(len(train))
    if "test" not in parts:
        rest, held = _held_out(train.labels, rest, TEST_FRACTION, len(train))
        parts["test"] = train.take(np.sort(held))
    if "validation" not in parts:
        rest, held = _held_out(train.labels, rest, validation_split, len(train))
        parts["validation"] = train.take(np.sort(held))
    parts["train"] = train.take(np.sort(rest))
    return {split: parts[split] for split in ("train", "validation", "test")}


def role_part(source: Source, role: str, class_names: list[str], key: str) -> Part:
    """The images of ``source`` that serve as ``role`` (``validation`` or ``test``) of a run on ``class_names``.

    A source with a split of that name gives it; one without splits of its own gives every image.
    Labels named by class (folders, CSV rows) are mapped to ``class_names`` by name.

    Raises:
        DataError: It has other splits but not this one, or classes the run does not know.
    """
    if role in source.parts:
        part = source.parts[role]
    elif set(source.parts) == {"train"}:
        part = source.parts["train"]
    else:
        raise error(f"'{source.name}' has splits ({', '.join(source.parts)}) but no {role} split; "
                    f"name the split's folder itself", key)
    if source.named:
        unknown = [name for name in source.class_names if name not in class_names]
        if unknown:
            raise error(f"'{source.name}' has classes the model was not trained on: {', '.join(unknown[:5])} "
                        f"(it knows {', '.join(class_names[:10])})", key)
        mapping = np.asarray([class_names.index(name) for name in source.class_names], np.int64)
        return Part(mapping[part.labels] if len(part) else part.labels, part.files, part.images)
    top = int(part.labels.max(initial=-1))
    if top >= len(class_names) or int(part.labels.min(initial=0)) < 0:
        raise error(f"'{source.name}' has label {top}, outside the model's {len(class_names)} classes", key)
    return part


def check_model_fits(source: str, class_count: int, channels: Any, shape: Any, classes: int,
                     key: str = "dataset") -> None:
    """The model's input takes images and its outputs cover the source's classes."""
    if class_count > classes:
        raise error(f"data set '{source}' has {plural(class_count, 'class')} but the model has {classes} "
                    f"(set classes: {class_count}, or give the last layer {class_count} units)", key)
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise error(f"data set '{source}' holds images, but the model's input {tuple(shape)} is not "
                    f"(height, width, 1 or 3 channels)", key)
    if channels is not None and channels not in (1, 3, 4):
        raise error(f"data set '{source}' has {channels}-channel images; the model's input "
                    f"{tuple(shape)} needs 1 or 3", key)


def split_parts(source: str, shape: Any, classes: int, validation_split: float) -> tuple[list[str], dict[str, Part]]:
    """The class names and the train, validation and test parts of a source for a model of input
    ``shape`` and ``classes`` outputs.

    Raises:
        DataError: it cannot be read, or does not fit the model.
    """
    read = read_source(source, shape=shape)
    check_model_fits(read.name, len(read.class_names), read.channels, shape, classes)
    kind = get_kind(dataset_kind(source)[0])
    split = kind.splits if kind is not None and kind.splits is not None else complete
    return read.class_names, split(read, validation_split)


def source_parts(source: str, shape: Any, classes: int, validation_split: float = 0.1, *,
                 validation: Optional[str] = None, test: Optional[str] = None) -> tuple[list[str], dict[str, Part]]:
    """A run's class names and its train, validation and test parts: those of ``source``, with
    ``validation`` and ``test`` (``train.validation``, ``train.test``) replacing those splits."""
    names, parts = split_parts(source, shape, classes, validation_split)
    for role, other in (("validation", validation), ("test", test)):
        if other is not None:
            parts[role] = role_part(read_source(other, role, shape), role, names, role)
    return names, parts
