"""``sequence``: blocks one after another, grouped under one name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from blockbuilder.blocks.registry import Block, BlockSpec, Chain, Children, Field, Node, Shape, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext
    from blockbuilder.language.expand import Expansion


class SequenceSpec(BlockSpec):
    """``sequence: [...]`` is short for ``sequence: {body: [...]}``."""


@register_block("sequence")
class Sequence(Block[SequenceSpec]):
    """Blocks one after another, shown as one block in the hierarchy."""

    Spec = SequenceSpec
    block_fields = ("body",)
    chains_body = True
    colour = "combinator"

    def expand(self, spec: SequenceSpec, fields: Mapping[str, Any], shape: Shape,
               ex: Expansion) -> tuple[Children, Shape]:
        if "body" not in fields:
            return {"body": ()}, shape
        body, out = ex.chain(fields["body"], shape, "body")
        return {"body": body}, out

    def receptive_field(self, node: Node[SequenceSpec], field: Field, chain: Chain) -> Field:
        return chain(node.group("body"), field)

    def build(self, node: Node[SequenceSpec], x: Any, ctx: BuildContext) -> Any:
        return ctx.build_all(node.group("body"), x)
