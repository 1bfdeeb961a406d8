"""Export a trained model as a SavedModel, a ``.keras`` file, ONNX or LiteRT, with its metadata.

Every export is written through ``blockbuilder.files.atomic_path`` (a temporary directory beside the
target), optionally verified there in a fresh process, and only then renamed into place: an interrupted
or failed export never leaves a half-written artifact behind.

Nothing here imports NumPy, TensorFlow or Keras at module level: the command line reads ``FORMATS`` and
checks its arguments (:func:`check_export`, :func:`inspect_source`) before any of them is loaded.

The metadata (resolved YAML, class names, input spec and scaling, versions) travels with the artifact:

* ``savedmodel``: ``assets/blockbuilder.json`` (and ``assets/resolved.yaml``) inside the directory;
* ``keras``: a ``blockbuilder.json`` entry inside the ``.keras`` zip archive;
* ``onnx``: the ``blockbuilder`` key of the ONNX model's ``metadata_props``;
* ``litert``: a ``NAME.blockbuilder.json`` file beside ``NAME.tflite``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blockbuilder.errors import CommandError
from blockbuilder.files import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

METADATA_NAME = "blockbuilder.json"
METADATA_VERSION = 1
SIGNATURE_KEY = "serving_default"
FORMATS = ("savedmodel", "keras", "onnx", "litert")
SUFFIXES = {"savedmodel": "", "keras": ".keras", "onnx": ".onnx", "litert": ".tflite"}
# Modules each optional format needs to write, and to check (--verify) or run (predict) an export.
EXPORT_EXTRAS = {"onnx": ("tf2onnx", "onnx")}
RUNTIME_EXTRAS = {"onnx": ("onnxruntime",), "litert": ("ai_edge_litert",)}
RUN_DIR_MODEL = "model.keras"


class ExportError(CommandError):
    """A user-facing export or predict failure, printed as one line with exit code 1."""


@dataclass(frozen=True)
class ModelSource:
    """A Keras model and what its run directory knows about it.

    Args:
        model: The loaded Keras model.
        path: Where it was loaded from (``None`` for an in-memory model).
        resolved_yaml: The fully resolved architecture YAML, when the run directory has one.
        class_names: Class names from the run directory, when it has them.
    """

    model: Any
    path: Path | None
    resolved_yaml: str | None = None
    class_names: list[str] | None = None


@dataclass(frozen=True)
class SourceFiles:
    """What a ``.keras`` file or run directory holds, read without Keras.

    Args:
        model_file: The ``.keras`` archive.
        resolved_yaml: The run directory's ``resolved.yaml``, when it has one.
        class_names: Class names from the run directory, when it has them.
    """

    model_file: Path
    resolved_yaml: str | None
    class_names: list[str] | None


@dataclass(frozen=True)
class ExportResult:
    """What ``export_model`` wrote.

    Args:
        path: The final path of the artifact.
        format: One of ``FORMATS``.
        metadata: The metadata stored with the artifact.
        max_abs_diff: Largest absolute difference found by the parity check (``None`` without one).
        samples: Number of random inputs the parity check ran.
        extra_files: Other files written beside the artifact (the LiteRT metadata file).
    """

    path: Path
    format: str
    metadata: dict[str, Any]
    max_abs_diff: float | None = None
    samples: int = 0
    extra_files: tuple[Path, ...] = field(default_factory=tuple)


def export_model(
    model_or_run_dir: Any,
    fmt: str,
    out_path: str | os.PathLike[str],
    *,
    force: bool = False,
    verify: bool = False,
    samples: int = 8,
    tolerance: float = 1e-4,
) -> ExportResult:
    """Export a model (in memory, a ``.keras`` file or a run directory) in one format.

    Args:
        model_or_run_dir: A ``keras.Model``, a ``.keras`` file or a run directory holding ``model.keras``.
        fmt: ``savedmodel``, ``keras``, ``onnx`` or ``litert``.
        out_path: Target path; the format's suffix (``.keras``, ``.onnx``, ``.tflite``) is added if missing.
        force: Replace an existing target.
        verify: Reload the export in a fresh process and compare it with the Keras model.
        samples: Number of random inputs for the parity check.
        tolerance: Largest absolute difference the parity check accepts.

    Returns:
        An ``ExportResult``.

    Raises:
        ExportError: A bad source, an unknown format, a missing extra, an existing target without
            ``force``, or a failed parity check.
    """
    target = check_export(fmt, out_path, force=force, verify=verify)
    source = load_source(model_or_run_dir)
    _require_backend(fmt)
    metadata = build_metadata(source, fmt)
    with atomic_path(target) as temporary:
        staged = Path(temporary)
        extra = _WRITERS[fmt](source.model, metadata, staged)
        diff = _verify(fmt, source.model, staged, metadata, samples, tolerance) if verify else None
        _make_room(staged, target, extra, force)
    final_extra = tuple(target.parent / p.name for p in extra)
    return ExportResult(target, fmt, metadata, diff, samples if verify else 0, final_extra)


def check_export(fmt: str, out_path: str | os.PathLike[str], *, force: bool = False, verify: bool = False) -> Path:
    """Check an export's format, extras and target without loading anything; return the target path.

    Raises:
        ExportError: an unknown format, a missing extra, or an existing target without ``force``.
    """
    check_format(fmt, verify=verify)
    target = _target_path(Path(out_path), fmt)
    _refuse_existing(target, force)
    return target


def check_format(fmt: str, *, verify: bool = False) -> None:
    """Check that ``fmt`` is an export format whose extras are installed (``train --export`` too).

    Raises:
        ExportError: an unknown format, or a missing extra (named, with the command that installs it).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}' (choose from {', '.join(FORMATS)})")
    _require_extra(fmt, EXPORT_EXTRAS.get(fmt, ()) + (RUNTIME_EXTRAS.get(fmt, ()) if verify else ()))


# --------------------------------------------------------------------------- loading the source


def load_source(model_or_run_dir: Any) -> ModelSource:
    """Load a model and its run-directory metadata.

    Args:
        model_or_run_dir: A ``keras.Model``, a ``.keras`` file or a run directory.

    Returns:
        A ``ModelSource``.

    Raises:
        ExportError: The path does not exist, is not a model, or cannot be read.
    """
    if not isinstance(model_or_run_dir, (str, os.PathLike)):
        return ModelSource(model_or_run_dir, None)
    files = inspect_source(model_or_run_dir)
    return ModelSource(load_keras_file(files.model_file), files.model_file, files.resolved_yaml, files.class_names)


def inspect_source(model_or_run_dir: str | os.PathLike[str]) -> SourceFiles:
    """Find the ``.keras`` archive of a path and read its run directory's files, without Keras.

    Raises:
        ExportError: The path does not exist, is not a ``.keras`` archive or run directory, or its
            ``resolved.yaml`` cannot be read.
    """
    model_file = find_keras_file(Path(model_or_run_dir))
    if not zipfile.is_zipfile(model_file):
        raise ExportError(f"{model_file}: cannot read model (not a valid .keras archive)")
    run_dir = model_file.parent
    return SourceFiles(model_file, read_resolved_yaml(run_dir), read_class_names(run_dir))


def find_keras_file(path: Path) -> Path:
    """Return the ``.keras`` file a path names: the file itself, or ``model.keras`` in a run directory."""
    if not path.exists():
        raise ExportError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            raise ExportError(f"{path}: is an exported SavedModel; export takes a .keras file or a run directory")
        if not (path / RUN_DIR_MODEL).is_file():
            raise ExportError(f"{path}: not a model (a run directory must contain {RUN_DIR_MODEL})")
        return path / RUN_DIR_MODEL
    if path.suffix != ".keras":
        raise ExportError(f"{path}: not a model (expected a .keras file or a run directory)")
    return path


def load_keras_file(path: Path) -> Any:
    """Load a ``.keras`` file without compiling it, as a one-line ``ExportError`` when it is unreadable."""
    if not zipfile.is_zipfile(path):
        raise ExportError(f"{path}: cannot read model (not a valid .keras archive)")
    import keras

    _register_custom_layers()
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged archive; the user needs one line.
        raise ExportError(f"{path}: cannot read model ({_first_line(exc)})") from exc


def read_resolved_yaml(run_dir: Path) -> str | None:
    """Return the text of ``resolved.yaml`` in a run directory, or ``None`` when there is none.

    Raises:
        ExportError: the file is not UTF-8 text or cannot be read.
    """
    path = run_dir / "resolved.yaml"
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ExportError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_class_names(run_dir: Path) -> list[str] | None:
    """Return class names from ``classes.json`` or ``metrics.json`` in a run directory, or ``None``."""
    for name in ("classes.json", "metrics.json"):
        path = run_dir / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        names = data.get("class_names") if isinstance(data, dict) else data
        if isinstance(names, list) and names:
            return [str(n) for n in names]
    return None


def _register_custom_layers() -> None:
    from blockbuilder.compiler import layers  # noqa: F401  (registers blockbuilder's serializable layers)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- metadata


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
        raise ExportError(f"{len(names)} class names for a model with {classes} outputs")
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


# --------------------------------------------------------------------------- writers

Writer = Callable[[Any, dict[str, Any], Path], "list[Path]"]


def _write_savedmodel(model: Any, metadata: dict[str, Any], path: Path) -> list[Path]:
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


def _write_keras(model: Any, metadata: dict[str, Any], path: Path) -> list[Path]:
    model.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(METADATA_NAME, json.dumps(metadata, indent=2))
    return []


def _write_onnx(model: Any, metadata: dict[str, Any], path: Path) -> list[Path]:
    import onnx

    with warnings.catch_warnings():  # Keras' tf2onnx shim probes the removed np.object
        warnings.simplefilter("ignore", FutureWarning)
        model.export(str(path), format="onnx", verbose=False, input_signature=_keras_signature(metadata))
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "blockbuilder", json.dumps(metadata)
    onnx.save(proto, str(path))
    return []


def _write_litert(model: Any, metadata: dict[str, Any], path: Path) -> list[Path]:
    model.export(str(path), format="litert", verbose=False, input_signature=_keras_signature(metadata))
    sidecar = litert_metadata_path(path)
    _write_json(sidecar, metadata)
    return [sidecar]


_WRITERS: dict[str, Writer] = {
    "savedmodel": _write_savedmodel,
    "keras": _write_keras,
    "onnx": _write_onnx,
    "litert": _write_litert,
}


def litert_metadata_path(tflite: Path) -> Path:
    """Return the metadata file written beside a ``.tflite`` file: ``NAME.blockbuilder.json``."""
    return tflite.with_suffix(".blockbuilder.json")


def _keras_signature(metadata: dict[str, Any]) -> list[Any]:
    import keras

    spec = metadata["input"]
    return [keras.InputSpec(shape=tuple(spec["shape"]), dtype=spec["dtype"], name=spec["name"])]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path) as temporary:
        Path(temporary).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- requirements


def _require_extra(fmt: str, modules: tuple[str, ...]) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(
            f"{fmt} export needs the '{fmt}' extra (missing: {', '.join(missing)}); "
            f"install it with: pip install 'blockbuilder[{fmt}]'"
        )


def _require_backend(fmt: str) -> None:
    import keras

    if fmt in ("savedmodel", "onnx", "litert"):
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            raise ExportError(f"{fmt} export needs TensorFlow, which is not installed (pip install tensorflow; "
                              "or export --format keras)") from None
    if fmt in ("onnx", "litert") and keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"{fmt} export needs the TensorFlow backend (now '{keras.backend.backend()}'); "
            "run it with KERAS_BACKEND=tensorflow (models trained on any backend export fine)"
        )


# --------------------------------------------------------------------------- the target


def _target_path(path: Path, fmt: str) -> Path:
    suffix = SUFFIXES[fmt]
    return path if not suffix or path.suffix == suffix else path.with_name(path.name + suffix)


def _refuse_existing(target: Path, force: bool) -> None:
    if (target.exists() or target.is_symlink()) and not force:
        raise ExportError(f"{target}: already exists (use --force to replace it)")


def _make_room(staged: Path, target: Path, extra: list[Path], force: bool) -> None:
    """Move an old target (with ``force``) into the staging folder, and the extra files into place.

    ``atomic_path`` then renames the staged artifact onto the target and removes the staging folder,
    the old artifact with it.
    """
    for src in [staged, *extra]:
        dest = target.parent / src.name
        if dest.exists() or dest.is_symlink():
            _refuse_existing(dest, force)
            _remove_aside(dest, staged.parent)
        if src != staged:
            os.replace(src, dest)


def _remove_aside(path: Path, tmp: Path) -> None:
    """Move an old artifact into the temporary directory (removed with it), so the rename cannot clash."""
    os.replace(path, tmp / f"old-{path.name}")


# --------------------------------------------------------------------------- parity check

_SAVEDMODEL_RUNNER = """
import sys, numpy as np, tensorflow as tf
path, inputs, outputs, name = sys.argv[1:5]
fn = tf.saved_model.load(path).signatures["serving_default"]
result = fn(**{name: tf.constant(np.load(inputs))})
np.save(outputs, next(iter(result.values())).numpy())
assert "blockbuilder" not in sys.modules, "the SavedModel check must not import blockbuilder"
"""

_KERAS_RUNNER = """
import sys, numpy as np, keras
path, inputs, outputs, name = sys.argv[1:5]
try:
    import blockbuilder.compiler.layers  # registers blockbuilder's custom layers
except ModuleNotFoundError:
    pass
model = keras.saving.load_model(path, compile=False)
np.save(outputs, np.asarray(model.predict(np.load(inputs), verbose=0)))
"""

_ONNX_RUNNER = """
import sys, numpy as np, onnxruntime
path, inputs, outputs, name = sys.argv[1:5]
session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
np.save(outputs, session.run(None, {session.get_inputs()[0].name: np.load(inputs)})[0])
assert "blockbuilder" not in sys.modules
"""

_LITERT_RUNNER = """
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
path, inputs, outputs, name = sys.argv[1:5]
x = np.load(inputs)
interpreter = Interpreter(model_path=path)
index = interpreter.get_input_details()[0]["index"]
interpreter.resize_tensor_input(index, x.shape)
interpreter.allocate_tensors()
interpreter.set_tensor(index, x)
interpreter.invoke()
np.save(outputs, interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
assert "blockbuilder" not in sys.modules
"""

_RUNNERS = {
    "savedmodel": _SAVEDMODEL_RUNNER,
    "keras": _KERAS_RUNNER,
    "onnx": _ONNX_RUNNER,
    "litert": _LITERT_RUNNER,
}


def random_inputs(spec: dict[str, Any], samples: int, seed: int = 0) -> np.ndarray:
    """Return ``samples`` uniform [0, 1) float32 inputs of the model's shape (unknown sizes become 32)."""
    import numpy as np

    shape = [samples] + [32 if d is None else d for d in spec["shape"][1:]]
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _verify(
    fmt: str, model: Any, artifact: Path, metadata: dict[str, Any], samples: int, tolerance: float
) -> float:
    """Run random inputs through the Keras model and, in a fresh process, through the export."""
    import numpy as np

    x = random_inputs(metadata["input"], samples)
    expected = np.asarray(model.predict(x, verbose=0), dtype=np.float32)
    actual = run_in_fresh_process(fmt, artifact, x, metadata["input"]["name"])
    if actual.shape != expected.shape:
        raise ExportError(f"parity check failed: output shape {actual.shape}, expected {expected.shape}")
    diff = float(np.max(np.abs(actual.astype(np.float32) - expected)))
    if not diff <= tolerance:
        raise ExportError(
            f"parity check failed: largest absolute difference {diff:.3g} > tolerance {tolerance:g} "
            f"over {samples} random inputs"
        )
    return diff


def run_in_fresh_process(fmt: str, artifact: Path, x: np.ndarray, input_name: str) -> np.ndarray:
    """Run ``x`` through an exported artifact in a new Python process and return its outputs.

    The process for ``savedmodel``, ``onnx`` and ``litert`` runs isolated (``python -I``): it can
    import TensorFlow and the runtimes, not blockbuilder.
    """
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="blockbuilder-verify-") as tmp:
        inputs, outputs = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        np.save(inputs, x)
        isolated = ["-I"] if fmt != "keras" else []
        arguments = [str(artifact.resolve()), str(inputs), str(outputs), input_name]
        command = [sys.executable, *isolated, "-c", _RUNNERS[fmt], *arguments]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
        if fmt == "keras":  # a .keras file needs blockbuilder's custom layers to load
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(), env.get("PYTHONPATH")]))
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp, env=env, check=False)
        if done.returncode != 0:
            reason = _last_line(done.stderr)
            raise ExportError(f"parity check failed: the export did not load in a fresh process ({reason})")
        result: np.ndarray = np.load(outputs)
        return result


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"
