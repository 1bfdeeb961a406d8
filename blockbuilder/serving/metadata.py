"""The metadata an export carries: what the model takes, how to prepare an image for it, its classes.

:func:`build_metadata` describes a loaded model for the people and programs that serve it (the keys are
listed in ``docs/export.md``); ``predict`` checks it when it reads it back
(``blockbuilder.serving.metadata_check``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from blockbuilder.serving.source import ExportError, ModelSource
from blockbuilder.text import plural

METADATA_NAME = "blockbuilder.json"
METADATA_VERSION = 1
SIGNATURE_KEY = "serving_default"


def build_metadata(source: ModelSource, fmt: str) -> dict[str, Any]:
    """Describe a model for the people and programs that serve it.

    Args:
        source: The model and its run-directory information.
        fmt: The export format.

    Returns:
        A JSON-serialisable dictionary (see ``docs/export.md`` for its keys).
    """
    import keras

    model = source.model
    spec = input_spec(model)
    classes = _output_size(model)
    names = source.class_names or [str(i) for i in range(classes)]
    if len(names) != classes:
        raise ExportError(f"{plural(len(names), 'class name')} for a model with {plural(classes, 'output')}")
    return {
        "metadata_version": METADATA_VERSION,
        "blockbuilder_version": blockbuilder_version(),
        "keras_version": keras.__version__,
        "model_name": model.name,
        "format": fmt,
        "signature": SIGNATURE_KEY,
        "input": spec,
        "output": {"name": "output_0", "shape": [None, classes], "dtype": "float32"},
        "preprocessing": preprocessing_for(spec),
        "class_names": names,
        "resolved_yaml": source.resolved_yaml,
        "source": str(source.path) if source.path else None,
    }


def input_spec(model: Any) -> dict[str, Any]:
    """Return the single input's ``name``, ``shape`` (batch dimension ``None``) and ``dtype``."""
    if len(model.inputs) != 1:
        raise ExportError(f"export supports models with one input; this one has {len(model.inputs)}")
    tensor = model.inputs[0]
    shape = [None] + [None if d is None else int(d) for d in tensor.shape[1:]]
    return {"name": signature_name(tensor.name), "shape": shape, "dtype": "float32"}


def signature_name(name: str) -> str:
    """Turn a Keras tensor name into a valid serving-signature argument name."""
    clean = re.sub(r"\W", "_", name or "input")
    return clean if clean[:1].isalpha() else f"input_{clean}"


def preprocessing_for(spec: dict[str, Any]) -> dict[str, Any]:
    """Say how an 8-bit image becomes the model's input: resize, channels, ``float32`` in [0, 1]."""
    shape = spec["shape"]
    channels = shape[-1] if len(shape) == 4 else None
    return {
        "source": "8-bit image",
        "resize": "bilinear, antialiased (as tf.image.resize(..., antialias=True) in training)",
        "channel_conversion": "grey to RGB by repetition; RGB to grey by ITU-R 601 luma; alpha dropped",
        "height": shape[1] if len(shape) == 4 else None,
        "width": shape[2] if len(shape) == 4 else None,
        "channels": channels,
        "color_mode": {1: "grayscale", 3: "rgb"}.get(channels, "unknown") if channels else "unknown",
        "dtype": "float32",
        "scale": 1 / 255,
        "offset": 0.0,
        "range": [0.0, 1.0],
    }


def default_metadata(spec: dict[str, Any], classes: int) -> dict[str, Any]:
    """The metadata ``predict`` needs, for a model that carries none: its input, the usual scaling, class numbers."""
    names = [str(i) for i in range(classes)]
    return {"input": spec, "preprocessing": preprocessing_for(spec), "class_names": names}


def litert_metadata_path(tflite: Path) -> Path:
    """Return the metadata file written beside a ``.tflite`` file: ``NAME.blockbuilder.json``."""
    return tflite.with_suffix(".blockbuilder.json")


def blockbuilder_version() -> str:
    """Return ``blockbuilder.__version__``, else the installed distribution's version, else ``unknown``."""
    version = getattr(sys.modules.get("blockbuilder"), "__version__", None)
    if version:
        return str(version)
    from importlib import metadata

    try:
        return metadata.version("blockbuilder")
    except metadata.PackageNotFoundError:
        return "unknown"


def _output_size(model: Any) -> int:
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ExportError("export supports models with one (batch, classes) output")
    return int(model.outputs[0].shape[-1])
