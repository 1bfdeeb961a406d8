"""blockbuilder: describe a CNN in YAML as modular blocks, get a Keras 3 model.

The pipeline, one public function per arrow::

    load(path_or_name, overrides)  ->  Architecture   (no TensorFlow imported)
    build(architecture)            ->  keras.Model
    summarize(architecture, model) ->  Summary
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blockbuilder.errors import BlockbuilderError, CommandError, DataError, ImageError, SpecError, UsageError
from blockbuilder.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from blockbuilder.blocks import Block, BlockSpec, Node, Shape, Site, register_block
    from blockbuilder.language.architecture import Architecture, load, loads
    from blockbuilder.language.budgets import Limits
    from blockbuilder.report.summary import Summary
    from blockbuilder.training.api import Run, train

# Imported on first use, so that ``blockbuilder --help`` does not pay for pydantic and the registry.
_LAZY = {
    "Architecture": "blockbuilder.language.architecture", "load": "blockbuilder.language.architecture",
    "loads": "blockbuilder.language.architecture", "Limits": "blockbuilder.language.budgets",
    "Block": "blockbuilder.blocks", "BlockSpec": "blockbuilder.blocks", "Node": "blockbuilder.blocks",
    "Shape": "blockbuilder.blocks", "Site": "blockbuilder.blocks", "register_block": "blockbuilder.blocks",
}


def __getattr__(name: str) -> Any:
    if name in ("train", "Run"):  # training: pydantic and yaml, no Keras until it trains
        from blockbuilder.training import api

        return getattr(api, name)
    if name in _LAZY:
        from blockbuilder import blocks
        from blockbuilder.language import architecture, budgets

        modules = {"blockbuilder.blocks": blocks, "blockbuilder.language.architecture": architecture,
                   "blockbuilder.language.budgets": budgets}
        return getattr(modules[_LAZY[name]], name)
    raise AttributeError(f"module 'blockbuilder' has no attribute {name!r}")


__all__ = [
    "Architecture",
    "Block",
    "BlockSpec",
    "BlockbuilderError",
    "CommandError",
    "DataError",
    "ImageError",
    "Limits",
    "Node",
    "Run",
    "Shape",
    "Site",
    "SpecError",
    "UsageError",
    "__version__",
    "build",
    "load",
    "load_model",
    "loads",
    "register_block",
    "summarize",
    "train",
]


def build(architecture: Architecture) -> keras.Model:
    """Build the (uncompiled) Keras model of an architecture, its ``weights:`` loaded and ``freeze:`` applied.

    Raises:
        CommandError: the ``weights:`` source cannot be used (see ``blockbuilder.transfer.prepare``).
    """
    from blockbuilder.quiet import import_keras_quietly

    import_keras_quietly()
    from blockbuilder.transfer import build as build_with_report

    model, _ = build_with_report(architecture)
    return model


def load_model(path: str, **kwargs: Any) -> keras.Model:
    """Load a saved ``.keras`` model; blockbuilder's own layers are registered first.

    ``keras.saving.load_model`` works as well once ``blockbuilder.compiler.layers`` has been imported.
    """
    from blockbuilder.serving.source import load_model as load_with_layers

    return load_with_layers(path, **kwargs)


def summarize(architecture: Architecture, model: Any = None) -> Summary:
    """Depth, parameters, multiply-accumulates and the block hierarchy (builds the model if needed)."""
    from blockbuilder.report.summary import summarize as _summarize

    # built whole: a model built with ``shapes_only`` stays in Keras' list of variables to initialise
    # until the session is cleared, and a later scope of the caller's process would draw them then
    return _summarize(architecture, model if model is not None else build(architecture))
