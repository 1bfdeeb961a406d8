"""``global_avg_pool`` and ``global_max_pool``: one value per channel, over height and width."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from blockbuilder.blocks.geometry import require_image
from blockbuilder.blocks.registry import Block, BlockSpec, Field, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class GlobalPoolSpec(BlockSpec):
    """``global_avg_pool: {keepdims: true}`` keeps a ``[1, 1, C]`` shape."""

    keepdims: bool = False


class _GlobalPool(Block[GlobalPoolSpec]):
    Spec = GlobalPoolSpec
    colour = "pool"
    keras_class: ClassVar[str] = ""

    def infer(self, spec: GlobalPoolSpec, shape: Shape, site: Site) -> Shape:
        require_image(shape, site)
        return (1, 1, shape[2]) if spec.keepdims else (shape[2],)

    def receptive_field(self, node: Node[GlobalPoolSpec], field: Field, chain: Any) -> Field:
        return None

    def build(self, node: Node[GlobalPoolSpec], x: Any, ctx: BuildContext) -> Any:
        return getattr(ctx.layers, self.keras_class)(keepdims=node.spec.keepdims, name=node.path)(x)


@register_block("global_avg_pool")
class GlobalAvgPool(_GlobalPool):
    """The mean over height and width."""

    keras_class = "GlobalAveragePooling2D"


@register_block("global_max_pool")
class GlobalMaxPool(_GlobalPool):
    """The maximum over height and width."""

    keras_class = "GlobalMaxPooling2D"
