"""``dropout``: zero a fraction ``rate`` of activations while training."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from blockbuilder.blocks.registry import Block, BlockSpec, Node, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class DropoutSpec(BlockSpec):
    """``dropout: 0.5``."""

    rate: Annotated[float, Field(ge=0, lt=1)]


@register_block("dropout")
class Dropout(Block[DropoutSpec]):
    """Dropout (inactive at inference)."""

    Spec = DropoutSpec
    scalar_key = "rate"
    colour = "regularise"

    def build(self, node: Node[DropoutSpec], x: Any, ctx: BuildContext) -> Any:
        return ctx.layers.Dropout(node.spec.rate, name=node.path)(x)

    def describe(self, node: Node[DropoutSpec]) -> str:
        return f"dropout {node.spec.rate:g}"
