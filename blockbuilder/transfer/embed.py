"""Features: the activations of any block for a set of images, pooled to one vector per image.

The building block of nearest-neighbour search and linear probes::

    from blockbuilder.transfer.embed import embed
    vectors = embed("runs/flowers", ["a.jpg", "b.jpg"], block="stage4")   # (2, 2048)

A block's output is the output of its last Keras layer: every layer a block creates is named under
the block's path (``stage4``, ``stage4.bottleneck3.conv2.bn`` ...), and the block's output layer comes
after all of them. Images are read by :func:`blockbuilder.images.read_image`, sized and scaled for the
model's input as ``predict`` and ``features`` do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from blockbuilder.errors import UsageError, did_you_mean
from blockbuilder.images import Preprocessing, read_image

__all__ = ["POOLS", "block_names", "embed", "output_layer", "pool"]

Pool = Literal["avg", "max", "none"]
POOLS: tuple[str, ...] = ("avg", "max", "none")


def block_names(layer_names: Sequence[str]) -> list[str]:
    """Every block path a list of layer names shows (``stage1.bottleneck2.conv1.bn`` -> ``stage1``, ...)."""
    found: dict[str, None] = {}
    for name in layer_names:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            found.setdefault(".".join(parts[:end]), None)
    return list(found)


def output_layer(model: Any, block: str) -> Any:
    """The Keras layer whose output is ``block``'s output (its last layer).

    Raises:
        UsageError: no layer belongs to such a block (with a did-you-mean and the top-level blocks).
    """
    layers = [layer for layer in model.layers if layer.name == block or layer.name.startswith(block + ".")]
    if not layers or type(layers[-1]).__name__ == "InputLayer":
        names = [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]
        top = list(dict.fromkeys(name.split(".", 1)[0] for name in names))
        raise UsageError(f"--block: no block called '{block}' in {model.name}{did_you_mean(block, block_names(names))}"
                         f" (top-level blocks: {', '.join(top)})")
    return layers[-1]


def pool(values: np.ndarray, how: Pool = "avg") -> np.ndarray:
    """``(n, height, width, channels)`` -> ``(n, channels)`` by the mean or the maximum over positions;
    ``none`` (and any output that is not image-shaped) flattens to ``(n, features)``."""
    if values.ndim == 4 and how == "avg":
        return np.asarray(values.mean(axis=(1, 2)), dtype=np.float32)
    if values.ndim == 4 and how == "max":
        return np.asarray(values.max(axis=(1, 2)), dtype=np.float32)
    return np.asarray(values.reshape(values.shape[0], -1), dtype=np.float32)


def embed(model_or_source: Any, images: Sequence[str | Path], block: str, how: Pool = "avg",
          batch_size: int = 32) -> np.ndarray:
    """The pooled activations of ``block`` for each image, one row per image (in order).

    Args:
        model_or_source: A ``keras.Model``, a ``.keras`` file or a run directory.
        images: Image files.
        block: A block path (``stage4``, ``stage3.bottleneck2``, ``head.dense1`` ...).
        how: ``avg`` or ``max`` over positions, or ``none`` (flattened).
        batch_size: Images per forward pass.

    Raises:
        UsageError: no such block. ImageError: an image cannot be read. ExportError: no model there.
    """
    import keras

    from blockbuilder.serving.features import probe_model

    model = model_or_source
    if isinstance(model_or_source, (str, Path)):
        from blockbuilder.serving.source import load_source

        model = load_source(model_or_source).model
    layer = output_layer(model, block)
    preprocessing = Preprocessing.for_input(tuple(model.inputs[0].shape))
    probe = probe_model(model, layer.output)
    rows = []
    for start in range(0, len(images), batch_size):
        batch = np.stack([read_image(image, preprocessing) for image in images[start:start + batch_size]])
        rows.append(pool(np.asarray(keras.ops.convert_to_numpy(probe(batch, training=False))), how))
    return np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)
