"""The one check of a data set's classes against the model, before anything is built.

``train`` and ``validate`` run it without TensorFlow on every source whose kind counts its classes
cheaply (:func:`blockbuilder.training.api.check_data`); the trainer runs it again once the data is
loaded (a ``tfds:`` set's classes are known only then). It compares the count with ``classes:``
(at that line), then with the units the network ends in (at the block that makes them: a
``head:``'s last ``dense``, say).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from blockbuilder.errors import SpecError

__all__ = ["check_classes", "output_units"]


def output_units(architecture: Any) -> Optional[int]:
    """How many classes the network outputs: the units of its last layer (``None`` when it ends in no vector)."""
    shape = architecture.output_shape
    return int(shape[0]) if len(shape) == 1 else None


def _units_node(root: Any) -> Any:
    """The block that gives the network its output units (the last one to change them), else the network."""
    units = root.output_shape
    made = [node for node in root.walk() if not node.children and node.output_shape == units
            and node.input_shape != units]
    return made[-1] if made else root


def check_classes(architecture: Any, source: str, names: Sequence[str]) -> None:
    """A data set's classes against the model's: its ``classes:`` (at that line), then its output units
    (at the block that makes them), before anything is built.

    Raises:
        SpecError: ``classes:`` or the output units differ from the number of classes in ``source``.
    """
    listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    classes = getattr(architecture, "classes", None)
    if classes is not None and len(names) != classes:
        document: Any = getattr(architecture, "document", None)
        where = document.loc_of("classes") if hasattr(document, "loc_of") else None
        raise SpecError(f"the model has {classes} classes but train.dataset '{source}' has "
                        f"{len(names)} ({listed}); write classes: {len(names)}, or classes: auto", where, "classes")
    units = output_units(architecture)
    if units is not None and units != len(names):
        raise _units_node(architecture.root).error(
            f"the network ends in {units} units but train.dataset '{source}' has {len(names)} classes ({listed}); "
            f"give its last layer {len(names)} units")
