"""Validated block tree -> ``keras.Model`` with hierarchical layer names.

Uses ``keras.layers`` and ``keras.ops`` only, so the same YAML builds on the TensorFlow and the JAX
backend.
"""

from __future__ import annotations

from typing import Any

import keras

from blockbuilder.compiler import layers as custom_layers
from blockbuilder.blocks.registry import Node, get_block


class BuildContext:
    """What a block's ``build`` needs: the Keras layer module and a few shared helpers."""

    layers = keras.layers

    def build_all(self, nodes: list[Node], x: Any) -> Any:
        """Apply a chain of blocks to ``x``."""
        for node in nodes:
            x = get_block(node.type).build(node, x, self)
        return x

    def norm(self, node: Node, x: Any, norm: Any) -> Any:
        """The batch normalisation a conv asks for (named ``<conv>.bn``)."""
        from blockbuilder.blocks.primitives import norm_spec

        settings = norm_spec(norm)
        if settings is None:
            return x
        return self.layers.BatchNormalization(
            epsilon=settings.epsilon, momentum=settings.momentum, center=settings.center,
            scale=settings.scale, name=f"{node.path}.bn",
        )(x)

    def activation(self, node: Node, x: Any, function: str) -> Any:
        """An activation named ``<block>.<function>``; ``none`` adds nothing."""
        if function in ("none", "linear"):
            return x
        return self.activation_layer(function, f"{node.path}.{function}")(x)

    def activation_layer(self, function: str, name: str) -> keras.layers.Layer:
        if function == "scaled_tanh":
            return custom_layers.ScaledTanh(name=name)
        if function in ("none", "linear"):
            return self.layers.Identity(name=name)
        return self.layers.Activation(function, name=name)

    def explicit_pad(self, node: Node, x: Any, padding: Any) -> Any:
        """Zero padding before a conv whose ``padding`` is a number (PyTorch style)."""
        if isinstance(padding, str) or padding == 0:
            return x
        from blockbuilder.blocks.primitives import padding_amounts

        return self.layers.ZeroPadding2D(padding_amounts(padding), name=f"{node.path}.pad")(x)

    def merge(self, how: str, tensors: list[Any], name: str) -> Any:
        """Merge tensors by ``add``, ``concat``, ``mean`` or ``multiply`` (which broadcasts)."""
        if how == "add":
            return self.layers.Add(name=name)(tensors)
        if how == "multiply":
            return self.layers.Multiply(name=name)(tensors)
        if how == "mean":
            return self.layers.Average(name=name)(tensors)
        return self.layers.Concatenate(axis=-1, name=name)(tensors)


def build_model(root: Node, name: str, input_shape: tuple[int, ...], input_name: str = "input") -> keras.Model:
    """Build the functional model for an expanded network."""
    inputs = keras.Input(shape=input_shape, name=input_name)
    outputs = BuildContext().build_all(root.children.get("body", []), inputs)
    return keras.Model(inputs, outputs, name=name)
