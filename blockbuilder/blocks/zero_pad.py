"""``zero_pad``: zeros around height and width."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from blockbuilder.blocks.geometry import NonNegativeInt, padding_amounts, require_image
from blockbuilder.blocks.registry import Block, BlockSpec, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext

MAX_PAD = 4096


class ZeroPadSpec(BlockSpec):
    """``zero_pad: 2``, ``[h, w]`` or ``[[top, bottom], [left, right]]``."""

    padding: Union[NonNegativeInt, tuple[NonNegativeInt, NonNegativeInt],
                   tuple[tuple[NonNegativeInt, NonNegativeInt], tuple[NonNegativeInt, NonNegativeInt]]]


@register_block("zero_pad")
class ZeroPad(Block[ZeroPadSpec]):
    """Zero padding of height and width."""

    Spec = ZeroPadSpec
    scalar_key = "padding"

    def infer(self, spec: ZeroPadSpec, shape: Shape, site: Site) -> Shape:
        require_image(shape, site)
        (top, bottom), (left, right) = padding_amounts(spec.padding)
        if max(top, bottom, left, right) > MAX_PAD:
            raise site.error(f"padding of more than {MAX_PAD} pixels", "padding")
        return (shape[0] + top + bottom, shape[1] + left + right, shape[2])

    def build(self, node: Node[ZeroPadSpec], x: Any, ctx: BuildContext) -> Any:
        amounts = padding_amounts(node.spec.padding)
        if amounts == ((0, 0), (0, 0)):
            return x  # no padding is no layer, as for identity
        return ctx.layers.ZeroPadding2D(amounts, name=node.path)(x)
