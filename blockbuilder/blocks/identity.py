"""``identity``: passes its input on (a branch path that does nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blockbuilder.blocks.registry import Block, BlockSpec, Node, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class IdentitySpec(BlockSpec):
    """``identity`` takes no arguments."""


@register_block("identity")
class Identity(Block[IdentitySpec]):
    """The input, unchanged; no layer."""

    Spec = IdentitySpec

    def build(self, node: Node[IdentitySpec], x: Any, ctx: BuildContext) -> Any:
        return x
