"""``layer_norm``: layer normalisation over the channels (the last axis), as ConvNeXt and transformers use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field as Bounded

from blockbuilder.blocks.registry import Block, BlockSpec, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class LayerNormSpec(BlockSpec):
    """``layer_norm: {epsilon: 1.0e-6}`` (Keras' default epsilon is 1e-3; ConvNeXt uses 1e-6)."""

    epsilon: Annotated[float, Bounded(gt=0)] = 1e-3
    center: bool = True
    scale: bool = True


def layer_norm_params(spec: LayerNormSpec, channels: int) -> int:
    """Weights of a layer norm over ``channels``: a scale and an offset per channel."""
    return channels * (int(spec.center) + int(spec.scale))


@register_block("layer_norm")
class LayerNorm(Block[LayerNormSpec]):
    """Normalises each position over its channels, then scales and shifts them (``gamma``, ``beta``)."""

    Spec = LayerNormSpec
    scalar_key = "epsilon"

    def infer(self, spec: LayerNormSpec, shape: Shape, site: Site) -> Shape:
        if not shape:
            raise site.error("a layer norm needs an input with a channel axis")
        return shape

    def params(self, node: Node[LayerNormSpec]) -> int:
        return layer_norm_params(node.spec, node.output_shape[-1])

    def build(self, node: Node[LayerNormSpec], x: Any, ctx: BuildContext) -> Any:
        spec = node.spec
        return ctx.layers.LayerNormalization(epsilon=spec.epsilon, center=spec.center, scale=spec.scale,
                                             name=node.path)(x)

    def describe(self, node: Node[LayerNormSpec]) -> str:
        return "layer norm"
