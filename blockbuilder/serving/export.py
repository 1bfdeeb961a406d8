"""Export a trained model as a SavedModel, a ``.keras`` file, ONNX or LiteRT, with its metadata.

Every export is written through ``blockbuilder.files.atomic_path`` (a temporary directory beside the
target), optionally verified there in a fresh process, and only then renamed into place: an interrupted
or failed export never leaves a half-written artifact behind.

Nothing here imports NumPy, TensorFlow or Keras at module level: the command line reads ``FORMATS`` and
checks its arguments (:func:`check_export`, ``blockbuilder.serving.source.inspect_source``) before any
of them is loaded.

The metadata (resolved YAML, class names, input spec and scaling, versions; built by
``blockbuilder.serving.metadata``) travels with the artifact (``blockbuilder.serving.writers``):

* ``savedmodel``: ``assets/blockbuilder.json`` (and ``assets/resolved.yaml``) inside the directory;
* ``keras``: a ``blockbuilder.json`` entry inside the ``.keras`` zip archive;
* ``onnx``: the ``blockbuilder`` key of the ONNX model's ``metadata_props``;
* ``litert``: a ``NAME.blockbuilder.json`` file beside ``NAME.tflite``.

The parity check of ``--verify`` is ``blockbuilder.serving.parity``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blockbuilder.files import atomic_path
from blockbuilder.serving.metadata import build_metadata
from blockbuilder.serving.parity import check_samples
from blockbuilder.serving.parity import verify as parity_check
from blockbuilder.serving.source import ExportError, load_source
from blockbuilder.serving.writers import Writer, write_keras, write_litert, write_onnx, write_savedmodel

FORMATS = ("savedmodel", "keras", "onnx", "litert")
SUFFIXES = {"savedmodel": "", "keras": ".keras", "onnx": ".onnx", "litert": ".tflite"}
# Modules each optional format needs to write, and to check (--verify) or run (predict) an export.
EXPORT_EXTRAS = {"onnx": ("tf2onnx", "onnx")}
RUNTIME_EXTRAS = {"onnx": ("onnxruntime",), "litert": ("ai_edge_litert",)}


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


_WRITERS: dict[str, Writer] = {
    "savedmodel": write_savedmodel,
    "keras": write_keras,
    "onnx": write_onnx,
    "litert": write_litert,
}


#: Formats whose runtimes cannot run bfloat16 or float16 compute (onnxruntime refuses the graph, the LiteRT
#: interpreter lacks the ops): a mixed-precision model goes there as its float32 twin.
FLOAT32_FORMATS = ("onnx", "litert")
_MIXED = ("mixed_bfloat16", "mixed_float16", "bfloat16", "float16")


def float32_copy(model: Any) -> Any:
    """``model`` itself when every layer computes in float32, else the same network with the same
    (float32) variables computing in float32. Its outputs match the mixed model's to that
    precision's rounding, and ``--verify`` compares the export with this twin."""
    if all(getattr(layer, "compute_dtype", "float32") == "float32" for layer in model.layers):
        return model
    import keras

    twin = keras.Model.from_config(_float32_config(model.get_config()))
    twin.set_weights(model.get_weights())
    return twin


def _float32_config(value: Any) -> Any:
    """A model config with every layer's dtype policy made float32."""
    if isinstance(value, dict):
        if value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
            return {**value, "config": {**value.get("config", {}), "name": "float32"}}
        return {key: "float32" if key == "dtype" and item in _MIXED else _float32_config(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_float32_config(item) for item in value]
    return value


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
    if verify:
        check_samples(samples)
    source = load_source(model_or_run_dir)
    _require_backend(fmt)
    metadata = build_metadata(source, fmt)
    model = float32_copy(source.model) if fmt in FLOAT32_FORMATS else source.model
    with atomic_path(target) as temporary:
        staged = Path(temporary)
        extra = _WRITERS[fmt](model, metadata, staged)
        diff = parity_check(fmt, model, staged, metadata, samples, tolerance) if verify else None
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
