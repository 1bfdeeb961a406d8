"""One writer per export format: each writes a model and its metadata to a (staged) path.

A writer returns the other files it wrote beside the artifact (the LiteRT metadata file); where the
metadata goes in each format is listed in ``blockbuilder.serving.export``.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blockbuilder.files import atomic_path
from blockbuilder.serving.metadata import METADATA_NAME, litert_metadata_path

Writer = Callable[[Any, dict[str, Any], Path], "list[Path]"]


def write_savedmodel(model: Any, metadata: dict[str, Any], path: Path) -> list[Path]:
    """A SavedModel directory with one ``serving_default`` signature; the metadata in ``assets/``."""
    import keras

    spec = metadata["input"]
    archive = keras.export.ExportArchive()
    archive.track(model)
    signature = [keras.InputSpec(shape=tuple(spec["shape"]), dtype=spec["dtype"], name=spec["name"])]
    archive.add_endpoint("serve", model.call, input_signature=signature)
    archive.write_out(str(path), verbose=False)
    assets = path / "assets"
    assets.mkdir(exist_ok=True)
    _write_json(assets / METADATA_NAME, metadata)
    if metadata["resolved_yaml"]:
        with atomic_path(assets / "resolved.yaml") as temporary:
            Path(temporary).write_text(metadata["resolved_yaml"], encoding="utf-8")
    return []


def write_keras(model: Any, metadata: dict[str, Any], path: Path) -> list[Path]:
    """A ``.keras`` archive with a ``blockbuilder.json`` entry."""
    model.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(METADATA_NAME, json.dumps(metadata, indent=2))
    return []


def write_onnx(model: Any, metadata: dict[str, Any], path: Path) -> list[Path]:
    """An ONNX model with the metadata under the ``blockbuilder`` key of its ``metadata_props``."""
    import onnx

    with warnings.catch_warnings():  # Keras' tf2onnx shim probes the removed np.object
        warnings.simplefilter("ignore", FutureWarning)
        model.export(str(path), format="onnx", verbose=False, input_signature=_keras_signature(metadata))
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "blockbuilder", json.dumps(metadata)
    onnx.save(proto, str(path))
    return []


def write_litert(model: Any, metadata: dict[str, Any], path: Path) -> list[Path]:
    """A ``.tflite`` file, and the metadata in ``NAME.blockbuilder.json`` beside it."""
    model.export(str(path), format="litert", verbose=False, input_signature=_keras_signature(metadata))
    sidecar = litert_metadata_path(path)
    _write_json(sidecar, metadata)
    return [sidecar]


def _keras_signature(metadata: dict[str, Any]) -> list[Any]:
    import keras

    spec = metadata["input"]
    return [keras.InputSpec(shape=tuple(spec["shape"]), dtype=spec["dtype"], name=spec["name"])]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path) as temporary:
        Path(temporary).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
