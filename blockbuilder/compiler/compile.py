"""Frozen block tree -> ``keras.Model`` with hierarchical layer names.

Each block builds itself (``Block.build``); this module only walks the tree. Blocks use
``keras.layers`` and ``keras.ops`` only, so the same YAML builds on the TensorFlow, JAX and PyTorch
backends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import keras

from blockbuilder.blocks import Node
from blockbuilder.compiler import layers  # noqa: F401  (custom layers; dotted names on PyTorch)


class BuildContext:
    """What a block's ``build`` needs: the Keras layer module, and a way to build its children."""

    layers = keras.layers

    def build_all(self, nodes: Iterable[Node[Any]], x: Any) -> Any:
        """Apply a chain of blocks to ``x``."""
        for node in nodes:
            x = node.block.build(node, x, self)
        return x


def build_model(root: Node[Any], name: str, input_shape: tuple[int, ...], input_name: str = "input") -> keras.Model:
    """Build the functional model for an expanded network."""
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(max(saved, 20_000))  # deep but legal nestings (see language.scope.MAX_NESTING)
    try:
        inputs = keras.Input(shape=input_shape, name=input_name)
        outputs = BuildContext().build_all(root.group("body"), inputs)
        return keras.Model(inputs, outputs, name=name)
    finally:
        sys.setrecursionlimit(saved)
