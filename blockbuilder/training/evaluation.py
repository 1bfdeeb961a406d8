"""Per-class results on the test set: confusion matrix, precision/recall/F1, top-5 accuracy, the most
confused pairs and a grid of misclassified images.

One pass over the test batches collects the predicted probabilities (and keeps only the misclassified
images, at most :data:`GRID_IMAGES`); the rest is NumPy. The files go into the run directory;
``metrics.json`` gets the numbers under ``test``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from blockbuilder.training.rundir import write_file, write_text
from blockbuilder.training.weights import to_numpy

__all__ = ["GRID_IMAGES", "MAX_CLASS_TABLES", "Predictions", "collect", "per_class", "write_outputs"]

GRID_IMAGES = 25
CONFUSED_PAIRS = 5
#: Most classes that get a per-class table and a confusion matrix (ImageNet's 1,000): one of 10,000 classes
#: was a 200 MB confusion_matrix.csv and 7.4 GB of memory.
MAX_CLASS_TABLES = 1000
#: Most classes whose names label the confusion matrix picture's axes.
MAX_TICKS = 100


@dataclass
class Predictions:
    """What the model said about every test image."""

    labels: np.ndarray
    probabilities: np.ndarray
    wrong_images: list[np.ndarray] = field(default_factory=list)
    wrong: list[tuple[int, int, float]] = field(default_factory=list)  # (true, predicted, probability)

    @property
    def predicted(self) -> np.ndarray:
        return np.asarray(self.probabilities.argmax(axis=-1))


def collect(model: Any, batches: Iterable[Any]) -> Predictions:
    """Run the model over ``(images, labels)`` batches; keep the misclassified images for the grid."""
    labels: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    images_kept: list[np.ndarray] = []
    wrong: list[tuple[int, int, float]] = []
    for images, batch_labels in batches:
        x, y = to_numpy(images), to_numpy(batch_labels).reshape(-1).astype(np.int64)
        p = to_numpy(model.predict_on_batch(x)).astype(np.float64)
        labels.append(y)
        probabilities.append(p)
        for index in np.flatnonzero(p.argmax(axis=-1) != y):
            if len(images_kept) < GRID_IMAGES:
                images_kept.append(x[index])
                wrong.append((int(y[index]), int(p[index].argmax()), float(p[index].max())))
    classes = int(getattr(model, "output_shape", (None, 1))[-1] or 1)
    return Predictions(np.concatenate(labels) if labels else np.zeros(0, np.int64),
                       np.concatenate(probabilities) if probabilities else np.zeros((0, classes)),
                       images_kept, wrong)


def confusion(results: Predictions, classes: int) -> np.ndarray:
    """``matrix[true, predicted]`` counts (``classes`` squared values: up to :data:`MAX_CLASS_TABLES` classes)."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (results.labels, results.predicted), 1)
    return matrix


def _names(results: Predictions, class_names: Sequence[str]) -> list[str]:
    classes = max(len(class_names), results.probabilities.shape[-1])
    return [*class_names, *(str(i) for i in range(len(class_names), classes))]


def omitted(classes: int) -> str | None:
    """Why a test set of ``classes`` classes has no per-class table and confusion matrix (``None``: it has them)."""
    if classes <= MAX_CLASS_TABLES:
        return None
    return (f"{classes:,} classes, more than {MAX_CLASS_TABLES:,}: no per-class table, confusion_matrix.csv or "
            "confusion_matrix.png")


def _most_confused(results: Predictions, classes: int) -> list[tuple[int, int, int]]:
    """``(count, true, predicted)`` of the most frequent mistakes, counted from the mistakes themselves."""
    wrong = results.labels != results.predicted
    pairs, counts = np.unique(results.labels[wrong] * classes + results.predicted[wrong], return_counts=True)
    found = sorted(zip(-counts, pairs), key=lambda item: (int(item[0]), int(item[1])))[:CONFUSED_PAIRS]
    return [(int(-count), int(pair // classes), int(pair % classes)) for count, pair in found]


def per_class(results: Predictions, class_names: Sequence[str]) -> dict[str, Any]:
    """``per_class`` rows, ``most_confused`` pairs and (more than 5 classes) ``top5_accuracy``.

    Every count is a ``bincount`` of the predictions (no ``classes`` by ``classes`` matrix); with more than
    :data:`MAX_CLASS_TABLES` classes the rows are left out and ``per_class_omitted`` says so.
    """
    names = _names(results, class_names)
    classes = len(names)
    support = np.bincount(results.labels, minlength=classes)
    predicted = np.bincount(results.predicted, minlength=classes)
    hits = np.bincount(results.labels[results.labels == results.predicted], minlength=classes)
    rows = []
    for index, name in enumerate(names if omitted(classes) is None else []):
        precision = hits[index] / predicted[index] if predicted[index] else 0.0
        recall = hits[index] / support[index] if support[index] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"class": name, "precision": round(float(precision), 4), "recall": round(float(recall), 4),
                     "f1": round(float(f1), 4), "support": int(support[index])})
    found: dict[str, Any] = {
        "per_class": rows,
        "most_confused": [{"true": names[t], "predicted": names[p], "count": n}
                          for n, t, p in _most_confused(results, classes)],
    }
    if omitted(classes) is not None:
        found["per_class_omitted"] = omitted(classes)
    if classes > 5 and len(results.labels):
        outputs = results.probabilities.shape[-1]
        top5 = np.argpartition(-results.probabilities, min(4, outputs - 1), axis=-1)[:, :5]
        found["top5_accuracy"] = round(float(np.mean(np.any(top5 == results.labels[:, None], axis=1))), 4)
    return found


def write_outputs(run_dir: Path, results: Predictions, class_names: Sequence[str]) -> None:
    """``confusion_matrix.csv`` and ``.png`` (up to :data:`MAX_CLASS_TABLES` classes), and
    ``misclassified.png`` (when any image is)."""
    names = _names(results, class_names)
    if omitted(len(names)) is None:
        matrix = confusion(results, len(names))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["true \\ predicted", *names])
        writer.writerows([name, *map(int, row)] for name, row in zip(names, matrix))
        write_text(run_dir / "confusion_matrix.csv", buffer.getvalue())
        _plot_confusion(run_dir / "confusion_matrix.png", matrix, names)
    if results.wrong_images:
        _plot_misclassified(run_dir / "misclassified.png", results, names)


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _plot_confusion(path: Path, matrix: np.ndarray, names: Sequence[str]) -> None:
    size = min(4 + 0.4 * len(names), 20)
    figure = _figure(size, size)
    axes = figure.subplots()
    axes.imshow(matrix, cmap="Blues")
    if len(names) <= MAX_TICKS:
        ticks = range(len(names))
        axes.set_xticks(ticks, names, rotation=90 if len(names) > 10 else 0)
        axes.set_yticks(ticks, names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if len(names) <= 30:
        limit = matrix.max() / 2 if matrix.size else 0
        for (t, p), count in np.ndenumerate(matrix):
            axes.text(p, t, str(count), ha="center", va="center", fontsize=8,
                      color="white" if count > limit else "black")
    axes.set_title("confusion matrix (test)")
    figure.tight_layout()
    write_file(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))


def _wide_enough_title(figure: Any, title: str) -> None:
    """Give ``figure`` the title ``title``, widening the figure when it is narrower (one or two images)."""
    text = figure.suptitle(title)
    width = text.get_window_extent().width / figure.dpi + 0.4  # inches, with a margin each side
    if width > figure.get_figwidth():
        figure.set_figwidth(width)


def _plot_misclassified(path: Path, results: Predictions, names: Sequence[str]) -> None:
    count = len(results.wrong_images)
    columns = min(5, count)
    rows = (count + columns - 1) // columns
    figure = _figure(2.2 * columns, 2.4 * rows)
    axes = np.atleast_1d(figure.subplots(rows, columns)).reshape(-1)
    for ax, image, (true, predicted, probability) in zip(axes, results.wrong_images, results.wrong):
        pixels = np.clip(image.astype(np.float32), 0.0, 1.0)
        grey = pixels.shape[-1] == 1
        ax.imshow(pixels[..., 0] if grey else pixels, cmap="gray" if grey else None, vmin=0.0, vmax=1.0)
        ax.set_title(f"{names[true]} -> {names[predicted]}\n({probability:.2f})", fontsize=8)
    for ax in axes:
        ax.axis("off")
    _wide_enough_title(figure, "misclassified test images (true -> predicted)")
    figure.tight_layout()
    write_file(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
