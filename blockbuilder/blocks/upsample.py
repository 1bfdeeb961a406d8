"""``upsample``: height and width made larger by whole factors (Keras ``UpSampling2D``), as a U-Net's
decoder does before it joins an encoder stage with ``merge``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field as Bounded

from blockbuilder.blocks.geometry import pair, require_image
from blockbuilder.blocks.registry import Block, BlockSpec, Field, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext

MAX_FACTOR = 64
Factor = Annotated[int, Bounded(gt=0, le=MAX_FACTOR)]


class UpsampleSpec(BlockSpec):
    """``upsample: 2``, ``[2, 1]`` or ``{size: 2, interpolation: bilinear}``."""

    size: Union[Factor, tuple[Factor, Factor]] = 2
    interpolation: Literal["nearest", "bilinear"] = "nearest"


@register_block("upsample")
class Upsample(Block[UpsampleSpec]):
    """Each pixel repeated ``size`` times down and across (``nearest``), or interpolated (``bilinear``)."""

    Spec = UpsampleSpec
    scalar_key = "size"
    colour = "pool"

    def infer(self, spec: UpsampleSpec, shape: Shape, site: Site) -> Shape:
        require_image(shape, site)
        rows, columns = pair(spec.size)
        return (shape[0] * rows, shape[1] * columns, shape[2])

    def receptive_field(self, node: Node[UpsampleSpec], field: Field, chain: Any) -> Field:
        """The same input pixels, seen by more output pixels: the jump shrinks by the factor, while it is
        a whole number of input pixels (past that the idea stops applying)."""
        if field is None:
            return None
        size, jump = field
        factor = max(pair(node.spec.size))
        return (size, jump // factor) if jump % factor == 0 else None

    def build(self, node: Node[UpsampleSpec], x: Any, ctx: BuildContext) -> Any:
        size = pair(node.spec.size)
        if size == (1, 1):
            return x  # a factor of one is no layer, as zero padding of nothing is none
        return ctx.layers.UpSampling2D(size, interpolation=node.spec.interpolation, name=node.path)(x)

    def describe(self, node: Node[UpsampleSpec]) -> str:
        rows, columns = pair(node.spec.size)
        factor = f"×{rows}" if rows == columns else f"×{rows},{columns}"
        return f"upsample {factor}" + (" bilinear" if node.spec.interpolation == "bilinear" else "")
