"""``flatten``: everything but the batch axis in one vector."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from blockbuilder.blocks.registry import Block, BlockSpec, Field, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class FlattenSpec(BlockSpec):
    """``flatten`` takes no arguments."""


@register_block("flatten")
class Flatten(Block[FlattenSpec]):
    """Height, width and channels in one vector."""

    Spec = FlattenSpec

    def infer(self, spec: FlattenSpec, shape: Shape, site: Site) -> Shape:
        return (math.prod(shape),)

    def receptive_field(self, node: Node[FlattenSpec], field: Field, chain: Any) -> Field:
        return None

    def build(self, node: Node[FlattenSpec], x: Any, ctx: BuildContext) -> Any:
        return ctx.layers.Flatten(name=node.path)(x)
