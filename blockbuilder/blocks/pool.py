"""``max_pool`` and ``avg_pool``: a window's maximum or mean; ``stride`` defaults to ``size``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from blockbuilder.blocks.geometry import Size, pair, size_text, spatial_output, stride_text, window_field
from blockbuilder.blocks.registry import Block, BlockSpec, Field, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class PoolSpec(BlockSpec):
    """``max_pool: {size: 2, stride: 2, padding: valid}``."""

    size: Size = 2
    stride: Size | None = None
    padding: Literal["same", "valid"] = "valid"


class _Pool(Block[PoolSpec]):
    Spec = PoolSpec
    scalar_key = "size"
    colour = "pool"
    keras_class: ClassVar[str] = ""

    def infer(self, spec: PoolSpec, shape: Shape, site: Site) -> Shape:
        h, w = spatial_output(site, shape, spec.size, spec.stride or spec.size, spec.padding)
        return (h, w, shape[2])

    def receptive_field(self, node: Node[PoolSpec], field: Field, chain: Any) -> Field:
        return window_field(field, node.spec.size, node.spec.stride or node.spec.size)

    def build(self, node: Node[PoolSpec], x: Any, ctx: BuildContext) -> Any:
        spec = node.spec
        layer = getattr(ctx.layers, self.keras_class)
        return layer(pair(spec.size), strides=pair(spec.stride or spec.size), padding=spec.padding,
                     name=node.path)(x)

    def describe(self, node: Node[PoolSpec]) -> str:
        spec = node.spec
        return f"{self.type.replace('_', ' ')} {size_text(spec.size)}{stride_text(spec.stride or spec.size)}"


@register_block("max_pool")
class MaxPool(_Pool):
    """The maximum over each window."""

    keras_class = "MaxPooling2D"


@register_block("avg_pool")
class AvgPool(_Pool):
    """The mean over each window."""

    keras_class = "AveragePooling2D"
