"""Reading weights files with h5py, without building the model that wrote them: Keras 3's ``.keras`` and
``.weights.h5`` layout, and Keras 2's legacy ``.h5`` (keras.applications' official files)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blockbuilder.errors import CommandError
from blockbuilder.files import check_zip_entries
from blockbuilder.serving.source import first_line

__all__ = ["KERAS_WEIGHTS", "StoredLayer", "StoredWeights", "WeightsError", "file_layout", "read_weights_file"]

KERAS_WEIGHTS = "model.weights.h5"


class WeightsError(CommandError):
    """A weights source that cannot be used; the message names it."""


@dataclass(frozen=True)
class StoredLayer:
    """One layer's weights in a file, in the layer's own order (kernel, bias; gamma, beta, mean, variance)."""

    name: str
    values: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class StoredWeights:
    """The layers with weights of one file, in the file's order.

    Attributes:
        path: The file read.
        layers: Its layers.
        by_order: The names are another library's (keras.applications'): match layers in order.
    """

    path: Path
    layers: tuple[StoredLayer, ...]
    by_order: bool = False


def read_weights_file(path: Path, model_names: Sequence[str] = ()) -> StoredWeights:
    """Every layer with weights in a ``.keras``, ``.weights.h5`` or legacy ``.h5`` file.

    Args:
        path: The file.
        model_names: The names of the model's layers: a legacy file whose names are mostly not among
            them (keras.applications' files) is matched in order.

    Raises:
        WeightsError: the file cannot be read, naming it.
    """
    import h5py

    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                check_zip_entries(archive, path, WeightsError)
                data = archive.read(KERAS_WEIGHTS)
            with h5py.File(io.BytesIO(data), "r") as f:
                return StoredWeights(path, tuple(_keras3_layers(f, path)))
        with h5py.File(path, "r") as f:
            if file_layout(f) == "keras3":
                return StoredWeights(path, tuple(_keras3_layers(f, path)))
            layers = tuple(_legacy_layers(f, path))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{path}: not a readable weights file ({first_line(exc)})") from None
    known = set(model_names)
    named = sum(layer.name in known for layer in layers)
    return StoredWeights(path, layers, by_order=named * 2 < len(layers))


def file_layout(f: Any) -> str | None:
    """``keras3`` (``model.save_weights``), ``legacy`` (Keras 2's ``layer_names``) or ``None``: no Keras weights."""
    import h5py

    if isinstance(f.get("layers"), h5py.Group) and "layer_names" not in f.attrs:
        return "keras3"
    group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
    return "legacy" if any(name.startswith("layer_names") for name in group.attrs) else None


def _keras3_layers(f: Any, path: Path) -> Iterator[StoredLayer]:
    """Keras 3's layout: ``layers/<key>/vars/0, 1 ...``, the layer's name in ``vars``' ``name`` attribute."""
    for key in f["layers"]:
        group = f["layers"][key]
        variables = group.get("vars")
        if variables is None or not len(variables):
            continue
        name = variables.attrs.get("name")
        if name is None:
            raise WeightsError(f"{path}: its layers carry no names (written by an older Keras 3); load it with "
                               "keras and save it again")
        name = name.decode() if isinstance(name, bytes) else str(name)
        yield StoredLayer(name, tuple(_tensor(variables[str(i)], path) for i in range(len(variables))))


def _legacy_layers(f: Any, path: Path) -> Iterator[StoredLayer]:
    """Keras 2's layout (keras.applications' files): ``layer_names`` and, per layer, ``weight_names``."""
    group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
    names = _strings(group, "layer_names")
    if not names:
        raise WeightsError(f"{path}: no layer weights in it (not a Keras weights file?)")
    for name in names:
        layer = group[name]
        weight_names = _strings(layer, "weight_names")
        if weight_names:
            yield StoredLayer(name, tuple(_tensor(layer[weight], path) for weight in weight_names))


_NOT_NUMBERS = {"S": "bytes", "U": "text", "O": "text", "c": "complex numbers", "V": "raw records", "M": "dates",
                "m": "time spans"}


def _tensor(item: Any, path: Path) -> np.ndarray:
    """One stored tensor, which must be an array of numbers (a string is never a number)."""
    import h5py

    if not isinstance(item, h5py.Dataset):
        raise WeightsError(f"{path}: {item.name} is a group, not a tensor (not a Keras weights file?)")
    value = np.asarray(item)
    if value.dtype.kind not in "biuf":
        raise WeightsError(f"{path}: tensor {item.name} holds {_NOT_NUMBERS.get(value.dtype.kind, value.dtype)}, "
                           "not numbers")
    return value


def _strings(group: Any, name: str) -> list[str]:
    """A list-of-strings attribute; Keras splits a long one into ``name0``, ``name1`` ..."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values += list(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]
