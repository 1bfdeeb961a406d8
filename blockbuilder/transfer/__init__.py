"""Transfer learning: start from trained weights, freeze blocks, put a new head on, extract features.

The language side (``weights:``, ``freeze:``, ``head:``) is :mod:`blockbuilder.transfer.settings` and
needs no Keras; loading (:mod:`~blockbuilder.transfer.weights`), freezing
(:mod:`~blockbuilder.transfer.freeze`) and features (:mod:`~blockbuilder.transfer.embed`) act on a
built model. :func:`build` is ``blockbuilder.build`` with the weights report; its :func:`prepare` loads
and freezes what a file asks for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.language.architecture import Architecture
    from blockbuilder.transfer.weights import LoadReport

__all__ = ["build", "prepare"]


def prepare(model: Any, architecture: Architecture, *, load: bool = True) -> LoadReport | None:
    """Load the architecture's ``weights:`` into ``model`` and apply its ``freeze:``.

    Args:
        model: The model built from ``architecture``.
        architecture: Its ``weights`` and ``freeze`` settings are used.
        load: ``False`` skips the weights (a resumed run restores its own).

    Returns:
        What was loaded and skipped, or ``None`` when no weights were loaded.

    Raises:
        CommandError: the weights source cannot be used (missing, unreadable, nothing fits, or a skip
            under ``strict``), named in one line.
    """
    report = None
    if load and architecture.weights is not None:
        from blockbuilder.transfer.weights import load_weights

        report = load_weights(model, architecture.weights, architecture)
    if architecture.freeze is not None:
        from blockbuilder.transfer.freeze import apply_freeze

        apply_freeze(model, architecture.freeze)
    return report


def build(architecture: Architecture, *, shapes_only: bool = False) -> tuple[Any, LoadReport | None]:
    """``blockbuilder.build`` with the weights report (what the command line shows).

    ``shapes_only`` (for figures: layers, shapes, counts, what trains) draws no weights when the file
    loads none; a file with ``weights:`` is built whole, since its report reads them.
    """
    from blockbuilder.compiler.compile import build_model

    model = build_model(architecture.root, architecture.name, architecture.input_shape, architecture.input_name,
                        shapes_only=shapes_only and architecture.weights is None)
    return model, prepare(model, architecture)
