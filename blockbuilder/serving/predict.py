"""Classify image files with an exported model, a ``.keras`` file or a run directory.

Images are prepared the way the export's metadata says training saw them: resized to the model's
input size, converted to grey or RGB, and scaled from 8-bit values to ``float32`` in [0, 1]. A
SavedModel needs TensorFlow alone (no Keras model code); ONNX and LiteRT files need their runtimes.
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from blockbuilder.serving.export import (
    METADATA_NAME,
    SIGNATURE_KEY,
    ExportError,
    build_metadata,
    find_keras_file,
    litert_metadata_path,
    load_source,
)

Forward = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Prediction:
    """The top classes for one image.

    Args:
        image: The image path as given.
        top: ``(class name, probability)`` pairs, most probable first.
    """

    image: str
    top: list[tuple[str, float]]


@dataclass(frozen=True)
class LoadedModel:
    """A callable model and the metadata that says how to feed it.

    Args:
        forward: Maps a ``(batch, height, width, channels)`` float32 array to class scores.
        metadata: The blockbuilder metadata (``input``, ``preprocessing``, ``class_names`` …).
    """

    forward: Forward
    metadata: dict[str, Any]


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
    batch = np.stack([load_image(path, loaded.metadata["preprocessing"]) for path in images])
    probabilities = as_probabilities(np.asarray(loaded.forward(batch), dtype=np.float32))
    names = loaded.metadata["class_names"]
    return [Prediction(str(path), top_classes(row, names, top)) for path, row in zip(images, probabilities)]


# --------------------------------------------------------------------------- loading models


def load_model(export_or_model: Any) -> LoadedModel:
    """Load any model form ``predict`` accepts, with its metadata."""
    if not isinstance(export_or_model, (str, Path)):
        return _from_keras_model(export_or_model)
    path = Path(export_or_model)
    if (path / "saved_model.pb").is_file():
        return _load_savedmodel(path)
    loader = _FILE_LOADERS.get(path.suffix) if path.is_file() else None
    return loader(path) if loader else _load_keras(path)


def _load_savedmodel(path: Path) -> LoadedModel:
    import tensorflow as tf

    try:
        signature = tf.saved_model.load(str(path)).signatures[SIGNATURE_KEY]
    except Exception as exc:  # TensorFlow raises many types for a damaged SavedModel.
        raise ExportError(f"{path}: cannot load SavedModel ({_first_line(exc)})") from exc
    metadata = _read_json(path / "assets" / METADATA_NAME) or _savedmodel_metadata(signature)
    name = metadata["input"]["name"]

    def forward(x: np.ndarray) -> np.ndarray:
        outputs = signature(**{name: tf.constant(x)})
        return next(iter(outputs.values())).numpy()

    return LoadedModel(forward, metadata)


def _savedmodel_metadata(signature: Any) -> dict[str, Any]:
    """Metadata for a SavedModel that blockbuilder did not write: read it off the signature."""
    (name, spec), = signature.structured_input_signature[1].items()
    output = next(iter(signature.structured_outputs.values()))
    spec_dict = {"name": name, "shape": spec.shape.as_list(), "dtype": "float32"}
    return _default_metadata(spec_dict, int(output.shape[-1]))


def _load_keras(path: Path) -> LoadedModel:
    source = load_source(path)
    embedded = _keras_embedded_metadata(find_keras_file(path))
    metadata = build_metadata(source, "keras")
    if embedded and not source.class_names:
        metadata["class_names"] = embedded["class_names"]
    return LoadedModel(_keras_forward(source.model), metadata)


def _from_keras_model(model: Any) -> LoadedModel:
    return LoadedModel(_keras_forward(model), build_metadata(load_source(model), "keras"))


def _keras_forward(model: Any) -> Forward:
    return lambda x: model.predict(x, verbose=0)


def _keras_embedded_metadata(path: Path) -> dict[str, Any] | None:
    with zipfile.ZipFile(path) as archive:
        if METADATA_NAME not in archive.namelist():
            return None
        return json.loads(archive.read(METADATA_NAME))


def _load_onnx(path: Path) -> LoadedModel:
    try:
        import onnxruntime
    except ModuleNotFoundError as exc:
        raise ExportError("ONNX models need the 'onnx' extra: pip install 'blockbuilder[onnx]'") from exc
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file.
        raise ExportError(f"{path}: cannot load ONNX model ({_first_line(exc)})") from exc
    props = session.get_modelmeta().custom_metadata_map
    metadata = json.loads(props["blockbuilder"]) if "blockbuilder" in props else _onnx_metadata(session)
    name = session.get_inputs()[0].name
    return LoadedModel(lambda x: session.run(None, {name: x})[0], metadata)


def _onnx_metadata(session: Any) -> dict[str, Any]:
    shape = [d if isinstance(d, int) else None for d in session.get_inputs()[0].shape]
    spec = {"name": session.get_inputs()[0].name, "shape": shape, "dtype": "float32"}
    return _default_metadata(spec, int(session.get_outputs()[0].shape[-1]))


def _load_litert(path: Path) -> LoadedModel:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ModuleNotFoundError as exc:
        raise ExportError("LiteRT models need the 'litert' extra: pip install 'blockbuilder[litert]'") from exc
    try:
        interpreter = Interpreter(model_path=str(path))
    except Exception as exc:  # the interpreter raises ValueError/RuntimeError for a bad file.
        raise ExportError(f"{path}: cannot load LiteRT model ({_first_line(exc)})") from exc
    metadata = _read_json(litert_metadata_path(path)) or _litert_metadata(interpreter)
    return LoadedModel(lambda x: _litert_run(interpreter, x), metadata)


def _litert_metadata(interpreter: Any) -> dict[str, Any]:
    details = interpreter.get_input_details()[0]
    shape = [None] + [int(d) for d in details["shape"][1:]]
    classes = int(interpreter.get_output_details()[0]["shape"][-1])
    return _default_metadata({"name": details["name"], "shape": shape, "dtype": "float32"}, classes)


def _litert_run(interpreter: Any, x: np.ndarray) -> np.ndarray:
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


_FILE_LOADERS: dict[str, Callable[[Path], LoadedModel]] = {".onnx": _load_onnx, ".tflite": _load_litert}


def _default_metadata(spec: dict[str, Any], classes: int) -> dict[str, Any]:
    from blockbuilder.serving.export import preprocessing_for

    names = [str(i) for i in range(classes)]
    return {"input": spec, "preprocessing": preprocessing_for(spec), "class_names": names}


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# --------------------------------------------------------------------------- images


def load_image(path: str | Path, preprocessing: dict[str, Any]) -> np.ndarray:
    """Read an image and prepare it as the model's input: size, channels, ``float32`` scaling.

    Args:
        path: An image file.
        preprocessing: The ``preprocessing`` entry of the export metadata.

    Returns:
        A ``(height, width, channels)`` float32 array.

    Raises:
        ExportError: The file is missing or is not an image Pillow can read.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert(_pil_mode(preprocessing.get("channels")))
            size = (preprocessing.get("width"), preprocessing.get("height"))
            if None not in size and image.size != size:
                image = image.resize(size, Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ExportError(f"{path}: cannot read image ({_first_line(exc)})") from exc
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    scaled = pixels * np.float32(preprocessing.get("scale", 1 / 255)) + np.float32(preprocessing.get("offset", 0.0))
    low, high = preprocessing.get("range", [0.0, 1.0])
    return np.clip(scaled, low, high)


def _pil_mode(channels: int | None) -> str:
    return "L" if channels == 1 else "RGB"


# --------------------------------------------------------------------------- results


def as_probabilities(scores: np.ndarray) -> np.ndarray:
    """Return ``scores`` if each row is already a distribution, else their softmax (logits)."""
    rows_sum_to_one = np.allclose(scores.sum(axis=-1), 1.0, atol=1e-3)
    if rows_sum_to_one and scores.min() >= 0.0:
        return scores
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


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
