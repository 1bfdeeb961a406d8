"""``crop``: rows and columns cut from the edges of height and width (Keras ``Cropping2D``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blockbuilder.blocks.geometry import Amounts, padding_amounts, require_image
from blockbuilder.blocks.registry import Block, BlockSpec, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class CropSpec(BlockSpec):
    """``crop: 1``, ``[h, w]`` or ``[[top, bottom], [left, right]]``, as ``zero_pad``'s ``padding``."""

    cropping: Amounts


@register_block("crop")
class Crop(Block[CropSpec]):
    """Rows and columns cut from the edges (NASNet shifts an image by a pixel: pad one side, crop the other)."""

    Spec = CropSpec
    scalar_key = "cropping"

    def infer(self, spec: CropSpec, shape: Shape, site: Site) -> Shape:
        require_image(shape, site)
        (top, bottom), (left, right) = padding_amounts(spec.cropping)
        height, width = shape[0] - top - bottom, shape[1] - left - right
        if min(height, width) <= 0:
            raise site.error(f"cropping {shape[0]}x{shape[1]} by {top + bottom}x{left + right} leaves "
                             f"{height}x{width}: the spatial size shrinks to zero", "cropping")
        return (height, width, shape[2])

    def build(self, node: Node[CropSpec], x: Any, ctx: BuildContext) -> Any:
        amounts = padding_amounts(node.spec.cropping)
        if amounts == ((0, 0), (0, 0)):
            return x  # no cropping is no layer, as for zero_pad
        return ctx.layers.Cropping2D(amounts, name=node.path)(x)

    def describe(self, node: Node[CropSpec]) -> str:
        (top, bottom), (left, right) = padding_amounts(node.spec.cropping)
        return f"crop {top},{bottom} × {left},{right}"
