"""Where a searched value goes: each key of ``search.space`` is a ``--set`` path into the document.

A path into ``variables`` names a variable that has a value there (the family's default member); a path
into the rest of the document must reach something it has (or a key that keeps its default); a path into
``train`` walks the training spec's classes, and every value the dimension takes is checked against the
field it lands in (a learning rate above 0 ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from blockbuilder.errors import Location, SpecError, did_you_mean, shown
from blockbuilder.language.document import Map, Seq
from blockbuilder.search.space import Dimension

__all__ = ["check_path"]

_PATH_STEP = re.compile(r"[A-Za-z_][\w-]*|\[\d+\]")


def check_path(dimension: Dimension, key_loc: Location | None, document: Map, spec: Map) -> None:
    """A path must be a ``--set`` path into something the document has (or the ``train:`` section knows)."""
    path = dimension.path
    steps = _PATH_STEP.findall(path)
    joined = "".join(s if s.startswith("[") else f".{s}" for s in steps).lstrip(".")
    where = f"search.space.{path}"
    if not steps or joined != path:
        raise SpecError(f"'{path}' is not a --set path like 'variables.filters' or 'network[2].conv.filters'",
                        key_loc, where)
    if steps[0] == "search":
        raise SpecError("the search section cannot search itself", key_loc, where)
    if steps[0] == "train":
        _check_training_path(dimension, steps[1:], key_loc, spec)
        return
    if steps[0] == "variables":
        variables = document.get("variables")
        names = list(variables) if isinstance(variables, Map) else []
        if len(steps) < 2 or steps[1] not in names:
            name = steps[1] if len(steps) > 1 else ""
            raise SpecError(f"no variable '{name}' in 'variables'{did_you_mean(name, names)}: a searched "
                            "variable needs a value there (the family's default member)", key_loc, where)
    _check_document_path(steps, document, key_loc, where)


def _check_document_path(steps: list[str], document: Map, key_loc: Location | None, where: str) -> None:
    container: Any = document
    for index, step in enumerate(steps):
        last = index == len(steps) - 1
        if step.startswith("["):
            position = int(step[1:-1])
            if not isinstance(container, Seq) or position >= len(container):
                raise SpecError(f"'{''.join(steps[:index]) or steps[0]}' has no item {step}", key_loc, where)
            container = container[position]
            continue
        if not isinstance(container, Map):
            raise SpecError(f"'{step}' is not inside a mapping in the document", key_loc, where)
        if step not in container:
            if last and index > 0:
                return  # a key that keeps its default (the block's spec checks it when a trial loads)
            raise SpecError(f"the document has no '{step}'{did_you_mean(step, [str(k) for k in container])}",
                            key_loc, where)
        container = container[step]


def _check_training_path(dimension: Dimension, steps: list[str], key_loc: Location | None, spec: Map) -> None:
    """Walk the ``train:`` section's spec classes; check each value against the field it lands in."""
    from pydantic import TypeAdapter

    from blockbuilder.training.spec import TrainSpec

    model: Any = TrainSpec
    found: Any = None
    where = f"search.space.{dimension.path}"
    for index, step in enumerate(steps):
        fields = getattr(model, "model_fields", None)
        if fields is None or step.startswith("["):
            return  # inside a list or a free-form value: the trial's own check decides
        if step not in fields:
            raise SpecError(f"the train section has no '{step}'{did_you_mean(step, list(fields))}", key_loc, where)
        found = fields[step]
        model = _model_in(found.annotation)
        if index < len(steps) - 1 and model is None:
            return
    if found is None:
        return
    adapter: Any = TypeAdapter(Annotated[found.annotation, found])  # the field's constraints too (gt=0 ...)
    for value, place in _dimension_values(dimension, spec):
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise SpecError(f"{dimension.path} cannot be {shown(value)}: {problem['msg'][0].lower()}"
                            f"{problem['msg'][1:]}", place, where) from None


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for inner in getattr(annotation, "__args__", ()):
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return None


def _dimension_values(dimension: Dimension, spec: Map) -> Iterator[tuple[Any, Location | None]]:
    if dimension.kind == "choice":
        yield from zip(dimension.values(), dimension.choice_locs)
        return
    bounds = spec.get(dimension.kind)
    low, high = dimension.corners()
    for index, value in enumerate((low, high)):
        yield value, bounds.loc_of(index) if isinstance(bounds, Seq) else dimension.loc
