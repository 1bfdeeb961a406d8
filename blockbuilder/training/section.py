"""The ``train:`` section of an architecture file, registered with the language (:mod:`language.sections`).

It reads the section into a :class:`~blockbuilder.training.spec.TrainSpec` (``arch.train``), gives its
part of the JSON Schema, and counts the classes of ``train.dataset`` for ``classes: auto``.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import ValidationError

from blockbuilder.errors import DataError, Location, SpecError, shown
from blockbuilder.language.document import Map
from blockbuilder.language.pydantic_errors import spec_error
from blockbuilder.language.resolve import plain
from blockbuilder.language.sections import Section, SectionInput
from blockbuilder.language.substitute import substitute
from blockbuilder.training.sources import class_names_of, kinds, locate, parse
from blockbuilder.training.spec import TrainSpec

__all__ = ["TRAIN"]


def read(given: SectionInput) -> dict[str, Any]:
    """``arch.train``: the section validated, its ``$names`` and ``${...}`` evaluated."""
    document = given.document
    section = document.get("train") or Map(loc=document.loc_of("train"))
    if not isinstance(section, Map):
        raise SpecError("'train' is a mapping of training settings", document.loc_of("train"), "train")
    values = substitute(section, given.scope, section.loc, "train")
    if isinstance(values, Map) and "epochs" in values and "phases" in values and _inherited_epochs(document, section):
        values = Map({k: v for k, v in values.items() if k != "epochs"}, loc=values.loc)
        values.locs = {k: v for k, v in section.locs.items() if k != "epochs"}
    try:
        return {"train": TrainSpec.model_validate(plain(values))}
    except ValidationError as exc:
        raise spec_error(exc, values, section.loc, "train", TrainSpec) from None


def _layer(document: Map, where: Location | None) -> int:
    """How late a value's layer comes: a base file 0, the file itself 1, the command line (``--set``) 2."""
    file = where.file if where is not None else ""
    if file.startswith("--set "):
        return 2
    return 1 if document.loc is not None and file == document.loc.file else 0


def _inherited_epochs(document: Map, section: Map) -> bool:
    """Whether ``train.epochs`` gives way to ``train.phases`` (docs/transfer.md, *train.phases*): it does
    when it comes from an earlier layer than the phases (a file that ``extends:`` the one with
    ``epochs``), or from another base file; written beside them or later, it must equal their total."""
    epochs, phases = section.loc_of("epochs"), section.loc_of("phases")
    if epochs is None or phases is None or epochs.file == phases.file:
        return False
    return _layer(document, epochs) <= _layer(document, phases)


def classes(document: Map, required: bool) -> Optional[int]:
    """The number of classes of ``train.dataset``, for ``classes: auto`` (``required``) or a file without
    ``classes:`` that trains on files (a source kind whose argument is a path; else ``None``).

    Raises:
        SpecError: ``required`` and the data set cannot be counted (tfds, a missing folder ...), at ``classes:``.
    """
    section = document.get("train")
    dataset = section.get("dataset", "digits") if isinstance(section, Map) else "digits"
    where = document.loc_of("classes")
    kind = parse(dataset)[0] if isinstance(dataset, str) else None
    if not required and (kind is None or not kind.path):
        return None
    if kind is None or kind.class_names is None:
        counted = [k.form for k in kinds() if k.class_names]
        raise SpecError(f"classes: auto counts the classes of train.dataset when it is {', '.join(counted[:-1])} "
                        f"or {counted[-1]}; write the number for {shown(dataset)}", where, "classes")
    source = locate(dataset, section.loc_of("dataset"))[0] if kind.path and isinstance(section, Map) else dataset
    try:
        names = class_names_of(source)
    except DataError as problem:
        if not required:
            return None
        raise SpecError(f"classes: auto cannot count the classes: {problem}", where, "classes") from None
    return len(names) if names else None


def schema(defs: dict[str, Any]) -> dict[str, Any]:
    """``train:``'s JSON Schema, from :class:`TrainSpec`."""
    found = TrainSpec.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(found.pop("$defs", {}))
    return {"train": found}


TRAIN = Section(name="train", keys=("train",), read=read, schema=schema, order=0, classes=classes)
