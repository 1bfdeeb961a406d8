"""Metadata read back from an export, checked before ``predict`` uses it.

Damaged JSON, missing keys, values of the wrong type, or a class list or input size that does not match
the model are each a one-line ``ExportError`` naming the file. Only the keys ``predict`` uses are
checked; the others are for people and are kept as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blockbuilder.serving.source import ExportError, first_line
from blockbuilder.text import plural

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
        raise ExportError(f"{where}: damaged metadata (not JSON: {first_line(exc)})") from None
    try:
        _Metadata.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        key = ".".join(str(part) for part in problem["loc"]) or "the top level"
        raise ExportError(f"{where}: damaged metadata ({key}: {problem['msg'].lower()})") from None
    return dict(data)


def read_metadata(path: Path) -> dict[str, Any] | None:
    """The checked metadata in a file, or ``None`` when there is no such file."""
    if not path.is_file():
        return None
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return checked_metadata(text, path)


def agreeing(written: dict[str, Any], found: dict[str, Any], where: str | Path) -> dict[str, Any]:
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
        raise ExportError(f"{where}: damaged metadata ({plural(len(written['class_names']), 'class name')} for a "
                          f"model with {plural(classes, 'output')})")
    return {**written, "input": {**written["input"], "name": found["input"]["name"]}}
