"""``separable_conv``: a depthwise conv then a 1×1 pointwise conv, one Keras ``SeparableConv2D`` (one weight layer).

Xception's unit of work (Chollet 2017). The depthwise kernel has ``depth_multiplier`` filters per input
channel; the pointwise kernel mixes them into ``filters`` channels; the bias (``use_bias``) is the
pointwise conv's. Counted as one weight layer by the depth rule, as the Xception paper counts it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from blockbuilder.blocks.batchnorm import norm_params, norm_spec
from blockbuilder.blocks.conv import apply_window, keras_padding, window_output, window_text
from blockbuilder.blocks.depthwise_conv import DepthwiseConvSpec
from blockbuilder.blocks.geometry import Width, pair, size_text, stride_text, window_field
from blockbuilder.blocks.registry import Block, Field, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class SeparableConvSpec(DepthwiseConvSpec):
    """``separable_conv: {filters: 128, kernel: 3, use_bias: false, norm: batchnorm}``: the keys of
    ``depthwise_conv`` and the pointwise conv's ``filters``."""

    filters: Width


@register_block("separable_conv")
class SeparableConv(Block[SeparableConvSpec]):
    """A depthwise-separable 2-D convolution (Keras ``SeparableConv2D``) with optional norm and activation."""

    Spec = SeparableConvSpec
    scalar_key = "filters"
    counts_depth = True
    colour = "conv"

    def infer(self, spec: SeparableConvSpec, shape: Shape, site: Site) -> Shape:
        h, w = window_output(site, shape, spec)
        return (h, w, spec.filters)

    def params(self, node: Node[SeparableConvSpec]) -> int:
        spec = node.spec
        kh, kw = pair(spec.kernel)
        inner = node.input_shape[2] * spec.depth_multiplier
        weights = kh * kw * inner + inner * spec.filters + spec.filters * spec.use_bias
        norm_channels = spec.filters if spec.order == "post" else node.input_shape[2]
        return weights + norm_params(norm_spec(spec.norm), norm_channels)

    def macs(self, node: Node[SeparableConvSpec]) -> int:
        kh, kw = pair(node.spec.kernel)
        inner = node.input_shape[2] * node.spec.depth_multiplier
        return math.prod(node.output_shape[:2]) * inner * (kh * kw + node.spec.filters)

    def receptive_field(self, node: Node[SeparableConvSpec], field: Field, chain: Any) -> Field:
        return window_field(field, node.spec.kernel, node.spec.stride, node.spec.dilation)

    def build(self, node: Node[SeparableConvSpec], x: Any, ctx: BuildContext) -> Any:
        spec = node.spec
        layer = ctx.layers.SeparableConv2D(
            spec.filters, pair(spec.kernel), strides=pair(spec.stride), padding=keras_padding(spec.padding),
            dilation_rate=pair(spec.dilation), depth_multiplier=spec.depth_multiplier, use_bias=spec.use_bias,
            name=node.path,
        )
        return apply_window(node, x, layer, ctx)

    def describe(self, node: Node[SeparableConvSpec]) -> str:
        spec = node.spec
        return window_text(node, f"sep conv {size_text(spec.kernel)}{stride_text(spec.stride)}, {spec.filters}")
