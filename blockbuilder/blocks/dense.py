"""``dense``: a fully connected layer on the last axis (one weight layer)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from blockbuilder.blocks.activation import ActivationName, activation_text, apply_activation
from blockbuilder.blocks.geometry import Width
from blockbuilder.blocks.registry import Block, BlockSpec, Field, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class DenseSpec(BlockSpec):
    """``dense: {units: 10, activation: softmax}``."""

    units: Width
    activation: ActivationName = "none"
    use_bias: bool = True


@register_block("dense")
class Dense(Block[DenseSpec]):
    """A fully connected layer, then its activation."""

    Spec = DenseSpec
    scalar_key = "units"
    counts_depth = True
    colour = "dense"

    def infer(self, spec: DenseSpec, shape: Shape, site: Site) -> Shape:
        return (*shape[:-1], spec.units)

    def params(self, node: Node[DenseSpec]) -> int:
        return node.input_shape[-1] * node.spec.units + node.spec.units * node.spec.use_bias

    def macs(self, node: Node[DenseSpec]) -> int:
        return math.prod(node.input_shape) * node.spec.units

    def receptive_field(self, node: Node[DenseSpec], field: Field, chain: Any) -> Field:
        return None

    def build(self, node: Node[DenseSpec], x: Any, ctx: BuildContext) -> Any:
        x = ctx.layers.Dense(node.spec.units, use_bias=node.spec.use_bias, name=node.path)(x)
        return apply_activation(node, x, node.spec.activation, ctx)

    def describe(self, node: Node[DenseSpec]) -> str:
        activation = activation_text(node.spec.activation)
        return f"dense {node.spec.units}" + (f", {activation}" if activation else "")
