"""Load any model form ``predict`` accepts, with the metadata that says how to feed it.

A SavedModel needs TensorFlow alone (no Keras model code); ONNX and LiteRT files need their runtimes; a
``.keras`` file or run directory is loaded with Keras. Metadata written with the model is checked
against what the model itself says (``blockbuilder.serving.metadata_check``); a model without any gets
the default (its input, 8-bit scaling, numbered classes).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blockbuilder.files import regular_file
from blockbuilder.serving.metadata import (
    METADATA_NAME,
    SIGNATURE_KEY,
    build_metadata,
    default_metadata,
    litert_metadata_path,
)
from blockbuilder.serving.metadata_check import agreeing, checked_metadata, read_metadata
from blockbuilder.serving.source import ExportError, find_keras_file, first_line, load_source

Forward = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LoadedModel:
    """A callable model and the metadata that says how to feed it.

    Args:
        forward: Maps a ``(batch, height, width, channels)`` float32 array to class scores.
        metadata: The blockbuilder metadata (``input``, ``preprocessing``, ``class_names`` …).
    """

    forward: Forward
    metadata: dict[str, Any]


def load_model(export_or_model: Any) -> LoadedModel:
    """Load any model form ``predict`` accepts, with its metadata."""
    if not isinstance(export_or_model, (str, Path)):
        return _from_keras_model(export_or_model)
    path = Path(export_or_model)
    if (path / "saved_model.pb").is_file():
        return _load_savedmodel(path)
    loader = FILE_LOADERS.get(path.suffix)
    return loader(regular_file(path, ExportError)) if loader else _load_keras(path)


def _load_savedmodel(path: Path) -> LoadedModel:
    written = read_metadata(path / "assets" / METADATA_NAME)
    import tensorflow as tf

    try:
        signature = tf.saved_model.load(str(path)).signatures[SIGNATURE_KEY]
    except Exception as exc:  # TensorFlow raises many types for a damaged SavedModel.
        raise ExportError(f"{path}: cannot load SavedModel ({first_line(exc)})") from exc
    found = _savedmodel_metadata(signature)
    metadata = agreeing(written, found, path / "assets" / METADATA_NAME) if written else found
    name = metadata["input"]["name"]

    def forward(x: np.ndarray) -> np.ndarray:
        outputs = signature(**{name: tf.constant(x)})
        scores: np.ndarray = next(iter(outputs.values())).numpy()
        return scores

    return LoadedModel(forward, metadata)


def _savedmodel_metadata(signature: Any) -> dict[str, Any]:
    """Metadata for a SavedModel that blockbuilder did not write: read it off the signature."""
    (name, spec), = signature.structured_input_signature[1].items()
    output = next(iter(signature.structured_outputs.values()))
    spec_dict = {"name": name, "shape": spec.shape.as_list(), "dtype": "float32"}
    return default_metadata(spec_dict, int(output.shape[-1]))


def _load_keras(path: Path) -> LoadedModel:
    embedded = _keras_embedded_metadata(find_keras_file(path))
    source = load_source(path)
    metadata = build_metadata(source, "keras")
    if embedded and not source.class_names:
        metadata = agreeing(embedded, metadata, path)
    return LoadedModel(_keras_forward(source.model), metadata)


def _from_keras_model(model: Any) -> LoadedModel:
    return LoadedModel(_keras_forward(model), build_metadata(load_source(model), "keras"))


def _keras_forward(model: Any) -> Forward:
    return lambda x: model.predict(x, verbose=0)


def _keras_embedded_metadata(path: Path) -> dict[str, Any] | None:
    try:
        with zipfile.ZipFile(path) as archive:
            if METADATA_NAME not in archive.namelist():
                return None
            text = archive.read(METADATA_NAME)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ExportError(f"{path}: cannot read model ({first_line(exc)})") from None
    return checked_metadata(text, f"{path}:{METADATA_NAME}")


def _load_onnx(path: Path) -> LoadedModel:
    try:
        import onnxruntime
    except ModuleNotFoundError as exc:
        raise ExportError("ONNX models need the 'onnx' extra: pip install 'blockbuilder[onnx]'") from exc
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file.
        raise ExportError(f"{path}: cannot load ONNX model ({first_line(exc)})") from exc
    props = session.get_modelmeta().custom_metadata_map
    found = _onnx_metadata(session)
    written = checked_metadata(props["blockbuilder"], f"{path}: metadata") if "blockbuilder" in props else None
    metadata = agreeing(written, found, path) if written else found
    name = session.get_inputs()[0].name
    return LoadedModel(lambda x: session.run(None, {name: x})[0], metadata)


def _onnx_metadata(session: Any) -> dict[str, Any]:
    shape = [d if isinstance(d, int) else None for d in session.get_inputs()[0].shape]
    spec = {"name": session.get_inputs()[0].name, "shape": shape, "dtype": "float32"}
    return default_metadata(spec, int(session.get_outputs()[0].shape[-1]))


def _load_litert(path: Path) -> LoadedModel:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ModuleNotFoundError as exc:
        raise ExportError("LiteRT models need the 'litert' extra: pip install 'blockbuilder[litert]'") from exc
    try:
        interpreter = Interpreter(model_path=str(path))
    except Exception as exc:  # the interpreter raises ValueError/RuntimeError for a bad file.
        raise ExportError(f"{path}: cannot load LiteRT model ({first_line(exc)})") from exc
    written = read_metadata(litert_metadata_path(path))
    found = _litert_metadata(interpreter)
    metadata = agreeing(written, found, litert_metadata_path(path)) if written else found
    return LoadedModel(lambda x: _litert_run(interpreter, x), metadata)


def _litert_metadata(interpreter: Any) -> dict[str, Any]:
    details = interpreter.get_input_details()[0]
    shape = [None] + [int(d) for d in details["shape"][1:]]
    classes = int(interpreter.get_output_details()[0]["shape"][-1])
    return default_metadata({"name": details["name"], "shape": shape, "dtype": "float32"}, classes)


def _litert_run(interpreter: Any, x: np.ndarray) -> np.ndarray:
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    scores: np.ndarray = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return scores


#: Loaders of the single-file exports, by suffix (a ``.keras`` file or a directory is loaded otherwise).
FILE_LOADERS: dict[str, Callable[[Path], LoadedModel]] = {".onnx": _load_onnx, ".tflite": _load_litert}
