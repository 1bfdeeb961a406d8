"""Feature maps of every stage for one image, and the learned filters of the first layer, in one PNG.

A *stage* is a top-level block of the network whose output is image-shaped (height × width ×
channels). Every Keras layer is named under its block's hierarchical path, so a stage's output is the
output of the last layer whose name starts with the block's name. The same helpers feed
``blockbuilder explore``.

Example:
    >>> features("runs/lenet5", "digit.png", "features.png")
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blockbuilder.errors import UsageError
from blockbuilder.files import atomic_path
from blockbuilder.images import Preprocessing, read_image
from blockbuilder.text import plural

PER_LINE = 8        # feature maps per line of a stage's grid
CELL = 1.0          # inches per feature map
LABEL_W = 1.7       # inches for the stage names on the left
MAX_FILTERS = 32


@dataclass(frozen=True)
class Stage:
    """A top-level block with an image-shaped output.

    Args:
        name: The block's name (the prefix of its Keras layers).
        layer: The last Keras layer of the block (its output is the block's output).
    """

    name: str
    layer: Any


def load(model_or_run_dir: str | Path) -> Any:
    """The ``ModelSource`` (model, class names) of a run directory or ``.keras`` file.

    Raises:
        ExportError: the path is missing or holds no readable model.
    """
    from blockbuilder.serving.source import load_source

    return load_source(model_or_run_dir)


def layer_groups(model: Any) -> dict[str, list[Any]]:
    """The model's layers grouped by top-level block (the first part of the hierarchical name), in order."""
    groups: dict[str, list[Any]] = {}
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        groups.setdefault(layer.name.split(".", 1)[0], []).append(layer)
    return groups


def image_shaped(layer: Any) -> bool:
    """Whether a layer's output is one ``(batch, height, width, channels)`` tensor."""
    shape = getattr(layer, "output", None)
    shape = getattr(shape, "shape", None)
    return shape is not None and len(shape) == 4


def stages(model: Any) -> list[Stage]:
    """The top-level blocks with image-shaped outputs, in network order."""
    found = []
    for name, layers in layer_groups(model).items():
        if image_shaped(layers[-1]):
            found.append(Stage(name, layers[-1]))
    return found


def first_conv(model: Any) -> Any | None:
    """The first layer with a 4-D kernel (a 2-D convolution), or ``None``."""
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and len(kernel.shape) == 4:
            return layer
    return None


def probe_model(model: Any, outputs: Any) -> Any:
    """A Keras sub-model of ``model`` from its input(s) to ``outputs`` (a tensor or a list), called with an array.

    A model of one input is given that input itself, not a list of one: called with one array, a model
    built on ``[input]`` warns that "the structure of `inputs` doesn't match the expected structure".
    """
    import keras

    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs)


def activations(model: Any, layers: list[Any], batch: np.ndarray) -> list[np.ndarray]:
    """The outputs of ``layers`` for ``batch`` (one forward pass through a Keras sub-model)."""
    import keras

    probe = probe_model(model, [layer.output for layer in layers])
    outputs = probe(batch, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32) for out in outputs]


def strongest(maps: np.ndarray, count: int) -> np.ndarray:
    """Channel indices of an ``(h, w, c)`` activation, the most active (mean) first."""
    return np.argsort(-maps.reshape(-1, maps.shape[-1]).mean(axis=0), kind="stable")[:count]


def filter_images(kernel: np.ndarray, count: int = MAX_FILTERS) -> list[np.ndarray]:
    """First-layer filters as images: RGB for 3 input channels, else the mean over input channels."""
    images = []
    for index in range(min(kernel.shape[-1], count)):
        weights = kernel[..., index]
        image = weights if weights.shape[-1] == 3 else weights.mean(axis=-1)
        spread = float(image.max() - image.min()) or 1.0
        images.append((image - image.min()) / spread)
    return images


# -- the picture ----------------------------------------------------------------------------------


def features(model_or_run_dir: str | Path, image: str | Path, output: str | Path,
             maps: int = 16) -> tuple[Path, list[str]]:
    """Write the feature-map picture of ``image`` through a trained model.

    Args:
        model_or_run_dir: A run directory or ``.keras`` file.
        image: The input image; it is resized and converted like ``blockbuilder predict`` does.
        output: The PNG to write.
        maps: Feature maps shown per stage, most active first.

    Returns:
        The path written and the names of the stages shown.

    Raises:
        ExportError: the model cannot be read.
        ImageError: the image cannot be read or is too large.
        CommandError: the picture cannot be written.
        UsageError: the model has no image-shaped stage.
    """
    source = load(model_or_run_dir)
    model = source.model
    found = stages(model)
    if not found:
        raise UsageError(f"{model_or_run_dir}: the model has no block with an image-shaped output to show")
    batch = read_image(image, Preprocessing.for_input(tuple(model.inputs[0].shape)))[None]
    outputs = activations(model, [stage.layer for stage in found], batch)
    conv = first_conv(model)
    filters = filter_images(np.asarray(conv.kernel)) if conv else []
    fig = _figure(batch[0], filters, conv.name if conv else "", found, [out[0] for out in outputs], maps)
    path = Path(output)
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=90, facecolor="white")
    return path, [stage.name for stage in found]


def _figure(image: np.ndarray, filters: list[np.ndarray], conv_name: str, found: list[Stage],
            outputs: list[np.ndarray], maps: int) -> Any:
    from matplotlib.figure import Figure

    lines = [math.ceil(min(maps, out.shape[-1]) / PER_LINE) for out in outputs]
    filter_lines = math.ceil(len(filters) / (2 * PER_LINE))
    header = 0.5 + 1.9 + (filter_lines * CELL / 2 + 0.45 if filters else 0)
    height = header + sum(line * CELL + 0.35 for line in lines) + 0.2
    width = LABEL_W + PER_LINE * CELL + 0.3
    fig = Figure(figsize=(width, height))
    fig.text(0.15 / width, 1 - 0.3 / height, "Feature maps of every stage", fontsize=14, fontweight="bold",
             va="center")
    top = 0.6
    _put(fig, image, LABEL_W, top, 1.6, width, height)
    fig.text(0.15 / width, 1 - (top + 0.8) / height, f"input\n{_shape(image.shape)}", fontsize=9, va="center")
    top += 1.9
    if filters:
        fig.text(0.15 / width, 1 - (top + 0.15) / height,
                 f"learned filters of {conv_name} ({len(filters)} shown)", fontsize=10, fontweight="bold",
                 va="center")
        _grid(fig, filters, top + 0.35, CELL / 2, 2 * PER_LINE, width, height, cmap="gray")
        top += filter_lines * CELL / 2 + 0.45
    for stage, out, line in zip(found, outputs, lines):
        _stage(fig, stage.name, out, maps, top, width, height)
        top += line * CELL + 0.35
    return fig


def _stage(fig: Any, name: str, out: np.ndarray, maps: int, top: float, width: float, height: float) -> None:
    chosen = strongest(out, maps)
    label = f"{name}\n{_shape(out.shape)}\n{len(chosen)} of {plural(out.shape[-1], 'map')}"
    fig.text(0.15 / width, 1 - (top + 0.45) / height, label, fontsize=9, va="center")
    _grid(fig, [out[..., c] for c in chosen], top, CELL, PER_LINE, width, height)


def _grid(fig: Any, images: list[np.ndarray], top: float, cell: float, per_line: int, width: float,
          height: float, cmap: str = "viridis") -> None:
    for index, image in enumerate(images):
        row, column = divmod(index, per_line)
        _put(fig, image, LABEL_W + column * cell, top + row * cell, cell * 0.94, width, height, cmap)


def _put(fig: Any, image: np.ndarray, left: float, top: float, size: float, width: float, height: float,
         cmap: str = "gray") -> None:
    """An image in an axes ``size`` inches square with its top-left corner at (``left``, ``top``) inches."""
    ax = fig.add_axes((left / width, 1 - (top + size) / height, size / width, size / height))
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
    else:
        ax.imshow(image, cmap=cmap, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)
