"""Classify image files with an exported model, a ``.keras`` file or a run directory.

Images are prepared the way the export's metadata says training saw them (``blockbuilder.images``, the
one image reader): resized to the model's input size, converted to grey or RGB, and scaled from 8-bit
values to ``float32`` in [0, 1]. A SavedModel needs TensorFlow alone (no Keras model code); ONNX and
LiteRT files need their runtimes.

Metadata is checked before it is used: damaged JSON, missing keys, values of the wrong type, or a class
list or input size that does not match the model are each a one-line ``ExportError`` naming the file.
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TextIO

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blockbuilder.images import Preprocessing, check_image, read_image
from blockbuilder.serving.export import (
    METADATA_NAME,
    SIGNATURE_KEY,
    ExportError,
    build_metadata,
    find_keras_file,
    inspect_source,
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
    preprocessing = Preprocessing.from_metadata(loaded.metadata["preprocessing"])
    batch = np.stack([read_image(path, preprocessing) for path in images])
    try:
        scores = loaded.forward(batch)
    except Exception as exc:  # TensorFlow and the runtimes raise their own types for a model that cannot run
        raise ExportError(f"{export_or_model}: the model cannot run on these images ({_first_line(exc)})") from None
    probabilities = as_probabilities(scores)
    names = loaded.metadata["class_names"]
    if probabilities.shape[-1] != len(names):
        raise ExportError(f"{export_or_model}: the model gives {probabilities.shape[-1]} scores for "
                          f"{len(names)} class names")
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
        _read_metadata(path / "assets" / METADATA_NAME)
    elif path.is_file() and path.suffix in _FILE_LOADERS:
        if path.suffix == ".tflite":
            _read_metadata(litert_metadata_path(path))
        needs_tensorflow = False
    else:
        inspect_source(path)
    for image in images:
        check_image(image, decode=False)
    return needs_tensorflow


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
    written = _read_metadata(path / "assets" / METADATA_NAME)
    import tensorflow as tf

    try:
        signature = tf.saved_model.load(str(path)).signatures[SIGNATURE_KEY]
    except Exception as exc:  # TensorFlow raises many types for a damaged SavedModel.
        raise ExportError(f"{path}: cannot load SavedModel ({_first_line(exc)})") from exc
    found = _savedmodel_metadata(signature)
    metadata = _agreeing(written, found, path / "assets" / METADATA_NAME) if written else found
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
    return _default_metadata(spec_dict, int(output.shape[-1]))


def _load_keras(path: Path) -> LoadedModel:
    embedded = _keras_embedded_metadata(find_keras_file(path))
    source = load_source(path)
    metadata = build_metadata(source, "keras")
    if embedded and not source.class_names:
        metadata = _agreeing(embedded, metadata, path)
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
        raise ExportError(f"{path}: cannot read model ({_first_line(exc)})") from None
    return checked_metadata(text, f"{path}:{METADATA_NAME}")


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
    found = _onnx_metadata(session)
    written = checked_metadata(props["blockbuilder"], f"{path}: metadata") if "blockbuilder" in props else None
    metadata = _agreeing(written, found, path) if written else found
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
    written = _read_metadata(litert_metadata_path(path))
    found = _litert_metadata(interpreter)
    metadata = _agreeing(written, found, litert_metadata_path(path)) if written else found
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
    scores: np.ndarray = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return scores


_FILE_LOADERS: dict[str, Callable[[Path], LoadedModel]] = {".onnx": _load_onnx, ".tflite": _load_litert}


def _default_metadata(spec: dict[str, Any], classes: int) -> dict[str, Any]:
    from blockbuilder.serving.export import preprocessing_for

    names = [str(i) for i in range(classes)]
    return {"input": spec, "preprocessing": preprocessing_for(spec), "class_names": names}


# --------------------------------------------------------------------------- metadata


Positive = Annotated[int, Field(gt=0)]


_STRICT = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)


class _Input(BaseModel):
    model_config = _STRICT
    name: str
    shape: list[Positive | None]


class _Preprocessing(BaseModel):
    model_config = _STRICT
    height: Positive | None = None
    width: Positive | None = None
    channels: Positive | None = None
    scale: float = 1 / 255
    offset: float = 0.0
    range: Annotated[list[float], Field(min_length=2, max_length=2)] = [0.0, 1.0]


class _Metadata(BaseModel):
    """The keys of the metadata that ``predict`` uses (the others are for people and are kept as they are)."""

    model_config = _STRICT
    input: _Input
    preprocessing: _Preprocessing
    class_names: list[str] = Field(min_length=1)


def checked_metadata(text: str | bytes, where: str | Path) -> dict[str, Any]:
    """Parse and check blockbuilder metadata (JSON); ``where`` names it in errors.

    Raises:
        ExportError: the text is not JSON, or lacks a key ``predict`` needs, or holds a value of the
            wrong type.
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ExportError(f"{where}: damaged metadata (not JSON: {_first_line(exc)})") from None
    try:
        _Metadata.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        key = ".".join(str(part) for part in problem["loc"]) or "the top level"
        raise ExportError(f"{where}: damaged metadata ({key}: {problem['msg'].lower()})") from None
    return dict(data)


def _read_metadata(path: Path) -> dict[str, Any] | None:
    """The checked metadata in a file, or ``None`` when there is no such file."""
    if not path.is_file():
        return None
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return checked_metadata(text, path)


def _agreeing(written: dict[str, Any], found: dict[str, Any], where: str | Path) -> dict[str, Any]:
    """The written metadata, once its input size and class count agree with the model's (``found``)."""
    def sizes(shape: list[int | None]) -> list[int | None]:
        return list(shape[1:])

    written_shape, model_shape = sizes(written["input"]["shape"]), sizes(found["input"]["shape"])
    prep = written["preprocessing"]
    prepared = [prep.get("height"), prep.get("width"), prep.get("channels")]
    if len(written_shape) != len(model_shape) or any(
            a is not None and b is not None and a != b for a, b in zip(written_shape, model_shape)):
        raise ExportError(f"{where}: damaged metadata (input shape {written['input']['shape']} but the model "
                          f"takes {found['input']['shape']})")
    if len(model_shape) == 3 and any(a is not None and b is not None and a != b
                                     for a, b in zip(prepared, model_shape)):
        raise ExportError(f"{where}: damaged metadata (preprocessing gives {prepared} but the model takes "
                          f"{model_shape})")
    classes = len(found["class_names"])
    if len(written["class_names"]) != classes:
        raise ExportError(f"{where}: damaged metadata ({len(written['class_names'])} class names for a model "
                          f"with {classes} outputs)")
    return {**written, "input": {**written["input"], "name": found["input"]["name"]}}


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


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
