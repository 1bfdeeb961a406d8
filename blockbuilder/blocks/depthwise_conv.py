"""``depthwise_conv``: one filter (or ``depth_multiplier``) per input channel (one weight layer)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field as Bounded

from blockbuilder.blocks.activation import ActivationName
from blockbuilder.blocks.batchnorm import Norm, norm_params, norm_spec
from blockbuilder.blocks.conv import apply_window, keras_padding, window_output, window_text
from blockbuilder.blocks.geometry import Padding, Size, pair, size_text, stride_text, window_field
from blockbuilder.blocks.registry import Block, BlockSpec, Field, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class DepthwiseConvSpec(BlockSpec):
    """``depthwise_conv: {kernel: 3, stride: 1, depth_multiplier: 1}``."""

    kernel: Size = 3
    stride: Size = 1
    padding: Padding = "same"
    dilation: Size = 1
    depth_multiplier: Annotated[int, Bounded(gt=0, le=1024)] = 1
    use_bias: bool = True
    norm: Norm = "none"
    activation: ActivationName = "none"
    order: Literal["post", "pre"] = "post"


@register_block("depthwise_conv")
class DepthwiseConv(Block[DepthwiseConvSpec]):
    """A depthwise 2-D convolution with optional normalisation and activation."""

    Spec = DepthwiseConvSpec
    counts_depth = True
    colour = "conv"

    def infer(self, spec: DepthwiseConvSpec, shape: Shape, site: Site) -> Shape:
        h, w = window_output(site, shape, spec)
        return (h, w, shape[2] * spec.depth_multiplier)

    def params(self, node: Node[DepthwiseConvSpec]) -> int:
        spec = node.spec
        kh, kw = pair(spec.kernel)
        out = node.output_shape[2]
        norm_channels = out if spec.order == "post" else node.input_shape[2]
        return kh * kw * out + out * spec.use_bias + norm_params(norm_spec(spec.norm), norm_channels)

    def macs(self, node: Node[DepthwiseConvSpec]) -> int:
        kh, kw = pair(node.spec.kernel)
        return math.prod(node.output_shape) * kh * kw

    def receptive_field(self, node: Node[DepthwiseConvSpec], field: Field, chain: Any) -> Field:
        return window_field(field, node.spec.kernel, node.spec.stride, node.spec.dilation)

    def build(self, node: Node[DepthwiseConvSpec], x: Any, ctx: BuildContext) -> Any:
        spec = node.spec
        layer = ctx.layers.DepthwiseConv2D(
            pair(spec.kernel), strides=pair(spec.stride), padding=keras_padding(spec.padding),
            depth_multiplier=spec.depth_multiplier, dilation_rate=pair(spec.dilation),
            use_bias=spec.use_bias, name=node.path,
        )
        return apply_window(node, x, layer, ctx)

    def describe(self, node: Node[DepthwiseConvSpec]) -> str:
        return window_text(node, f"depthwise {size_text(node.spec.kernel)}{stride_text(node.spec.stride)}")
