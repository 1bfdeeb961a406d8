"""Classify image files with an exported model, a ``.keras`` file or a run directory.

Images are prepared the way the export's metadata says training saw them (``blockbuilder.images``, the
one image reader): resized to the model's input size, converted to grey or RGB, and scaled from 8-bit
values to ``float32`` in [0, 1]. A SavedModel needs TensorFlow alone (no Keras model code); ONNX and
LiteRT files need their runtimes (``blockbuilder.serving.loaders``).

Metadata is checked before it is used (``blockbuilder.serving.metadata_check``): damaged JSON, missing
keys, values of the wrong type, or a class list or input size that does not match the model are each a
one-line ``ExportError`` naming the file.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from blockbuilder.files import regular_file
from blockbuilder.images import Preprocessing, check_image, read_image
from blockbuilder.serving.loaders import FILE_LOADERS, load_model
from blockbuilder.serving.metadata import METADATA_NAME, litert_metadata_path
from blockbuilder.serving.metadata_check import read_metadata
from blockbuilder.serving.source import ExportError, first_line, inspect_source
from blockbuilder.text import plural


@dataclass(frozen=True)
class Prediction:
    """The top classes for one image.

    Args:
        image: The image path as given.
        top: ``(class name, probability)`` pairs, most probable first.
    """

    image: str
    top: list[tuple[str, float]]


def predict(export_or_model: Any, images: Sequence[str | Path], top: int = 3) -> list[Prediction]:
    """Return the ``top`` most probable classes for each image.

    Args:
        export_or_model: A SavedModel directory, a ``.keras``/``.onnx``/``.tflite`` file, a run
            directory, or a ``keras.Model``.
        images: Paths of image files (PNG, JPEG, anything Pillow reads).
        top: How many classes to return per image.

    Returns:
        One ``Prediction`` per image, in order.

    Raises:
        ExportError: The model or an image cannot be read.
    """
    if top < 1:
        raise ExportError(f"--top must be at least 1, got {top}")
    loaded = load_model(export_or_model)
    preprocessing = Preprocessing.from_metadata(loaded.metadata["preprocessing"])
    batch = np.stack([read_image(path, preprocessing) for path in images])
    try:
        scores = loaded.forward(batch)
    except Exception as exc:  # TensorFlow and the runtimes raise their own types for a model that cannot run
        raise ExportError(f"{export_or_model}: the model cannot run on these images ({first_line(exc)})") from None
    probabilities = as_probabilities(scores)
    names = loaded.metadata["class_names"]
    if probabilities.shape[-1] != len(names):
        raise ExportError(f"{export_or_model}: the model gives {plural(probabilities.shape[-1], 'score')} for "
                          f"{plural(len(names), 'class name')}")
    return [Prediction(str(path), top_classes(row, names, top)) for path, row in zip(images, probabilities)]


def check_arguments(export_or_model: str | Path, images: Sequence[str | Path]) -> bool:
    """Check a model path and image files without TensorFlow; return whether the model needs TensorFlow.

    The model's kind and metadata are checked (a SavedModel's ``assets/blockbuilder.json``, a LiteRT
    file's ``.blockbuilder.json``, a ``.keras`` archive and its run directory), and each image's header:
    it exists, is an image, and has no more pixels than the limit.

    Raises:
        ExportError: the model path is missing, not a model, or has damaged metadata.
        ImageError: an image is missing, not an image, or too large.
    """
    path = Path(export_or_model)
    if not (path.exists() or path.is_symlink()):
        raise ExportError(f"{path}: no such file or directory")
    needs_tensorflow = True
    if (path / "saved_model.pb").is_file():
        read_metadata(path / "assets" / METADATA_NAME)
    elif path.suffix in FILE_LOADERS:
        regular_file(path, ExportError)
        if path.suffix == ".tflite":
            read_metadata(litert_metadata_path(path))
        needs_tensorflow = False
    else:
        inspect_source(path)
    for image in images:
        check_image(image, decode=False)
    return needs_tensorflow


# --------------------------------------------------------------------------- results


def as_probabilities(scores: Any) -> np.ndarray:
    """Each row of ``scores`` as probabilities that sum to 1: rescaled if it already is a distribution
    (a softmax output), else its softmax (logits).

    The arithmetic is in float64 whatever the model's dtype: a ``mixed_bfloat16`` model's softmax has
    about three significant digits, and its row sums (1.002, say) would otherwise pass unnoticed.
    """
    values = np.asarray(scores, dtype=np.float64)
    sums = values.sum(axis=-1, keepdims=True)
    if values.min() >= 0.0 and np.allclose(sums, 1.0, rtol=0.0, atol=1e-2):
        rescaled: np.ndarray = values / sums
        return rescaled
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    softmax: np.ndarray = shifted / shifted.sum(axis=-1, keepdims=True)
    return softmax


def top_classes(row: np.ndarray, names: Sequence[str], top: int) -> list[tuple[str, float]]:
    """Return the ``top`` ``(name, probability)`` pairs of one row, most probable first."""
    order = np.argsort(-row, kind="stable")[:top]
    return [(names[i], float(row[i])) for i in order]


def print_predictions(predictions: Sequence[Prediction], stream: TextIO | None = None) -> None:
    """Print predictions: a rich table on a terminal, one plain line per image otherwise.

    The plain form is ``IMAGE: NAME PROB, NAME PROB, …`` with probabilities to four decimals.
    """
    stream = stream or sys.stdout
    if stream.isatty():
        _print_table(predictions, stream)
        return
    for prediction in predictions:
        ranked = ", ".join(f"{name} {prob:.4f}" for name, prob in prediction.top)
        print(f"{prediction.image}: {ranked}", file=stream)


def _print_table(predictions: Sequence[Prediction], stream: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("image", "rank", "class", "probability")
    for prediction in predictions:
        for rank, (name, prob) in enumerate(prediction.top, start=1):
            table.add_row(prediction.image if rank == 1 else "", str(rank), name, f"{prob:.4f}")
    Console(file=stream).print(table)
