"""``inverted_residual``: MobileNetV2's unit (Sandler et al. 2018), as keras.applications builds it.

expand 1×1 conv → BN → ReLU6, depthwise k×k (stride) → BN → ReLU6, project 1×1 (linear) → BN, and the
input added back when the stride is 1 and the widths match. ``expansion: 1`` has no expand conv (the
first unit of MobileNetV2). A strided depthwise conv is preceded by keras.applications'
``correct_pad`` zero padding and is ``valid``; a stride of 1 is ``same``.

The unit is one leaf block whose Keras layers are made in :meth:`InvertedResidual.build`, not a
combinator of ``conv`` children: the expansion has no block fields to expand (the unit's inside is
fixed, not written by the user), the layer order and names follow keras.applications one to one
(``unit.expand``, ``unit.expand.bn``, ``unit.depthwise`` ... ``unit.add``) so weights load by order,
and the summary shows one row per unit, as MobileNetV2's table does, with the unit's own params, MACs
and a depth of 3 (2 without the expand conv).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field as Bounded

from blockbuilder.blocks.activation import ActivationName, activation_layer, activation_text
from blockbuilder.blocks.batchnorm import BatchNormSpec, Norm, batch_norm_layer, norm_params, norm_spec
from blockbuilder.blocks.geometry import (
    PositiveInt,
    Width,
    require_image,
    size_text,
    spatial_output,
    stride_text,
    window_field,
)
from blockbuilder.blocks.registry import Block, BlockSpec, DepthOf, Field, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext

MAX_EXPANSION = 64
#: keras.applications' MobileNetV2 batch norm: epsilon 1e-3, momentum 0.999.
MOBILENET_NORM = BatchNormSpec(epsilon=1e-3, momentum=0.999)


class InvertedResidualSpec(BlockSpec):
    """``inverted_residual: {filters: 24, expansion: 6, stride: 2}``."""

    filters: Width
    expansion: Annotated[int, Bounded(gt=0, le=MAX_EXPANSION)] = 6
    stride: PositiveInt = 1
    kernel: PositiveInt = 3
    norm: Norm = MOBILENET_NORM
    activation: ActivationName = "relu6"


def correct_pad(shape: Shape, kernel: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """keras.applications' ``imagenet_utils.correct_pad``: one pixel less at the top/left of an even side.

    A 1×1 kernel needs no padding (keras.applications' formula would ask for -1 there).
    """
    half = kernel // 2
    return (max(0, half - (1 - shape[0] % 2)), half), (max(0, half - (1 - shape[1] % 2)), half)


def _parts(spec: InvertedResidualSpec, shape: Shape, site: Site) -> tuple[int, Shape, Shape]:
    """The expanded width, the depthwise conv's output shape and the unit's output shape."""
    require_image(shape, site)
    hidden = shape[2] * spec.expansion
    if spec.stride > 1:
        padding: Any = correct_pad(shape, spec.kernel)
        h, w = spatial_output(site, shape, spec.kernel, spec.stride, padding)
    else:
        h, w = spatial_output(site, shape, spec.kernel, 1, "same")
    return hidden, (h, w, hidden), (h, w, spec.filters)


@register_block("inverted_residual")
class InvertedResidual(Block[InvertedResidualSpec]):
    """MobileNetV2's inverted residual: expand 1×1, depthwise, linear 1×1 projection, add when shapes match."""

    Spec = InvertedResidualSpec
    scalar_key = "filters"
    colour = "conv"

    def infer(self, spec: InvertedResidualSpec, shape: Shape, site: Site) -> Shape:
        return _parts(spec, shape, site)[2]

    @staticmethod
    def adds(node: Node[InvertedResidualSpec]) -> bool:
        """Whether the input is added back (stride 1, same width), as in keras.applications."""
        return node.spec.stride == 1 and node.input_shape[2] == node.spec.filters

    def params(self, node: Node[InvertedResidualSpec]) -> int:
        spec, cin = node.spec, node.input_shape[2]
        hidden = cin * spec.expansion
        norm = norm_spec(spec.norm)
        expand = cin * hidden + norm_params(norm, hidden) if spec.expansion > 1 else 0
        depthwise = spec.kernel * spec.kernel * hidden + norm_params(norm, hidden)
        project = hidden * spec.filters + norm_params(norm, spec.filters)
        return expand + depthwise + project

    def macs(self, node: Node[InvertedResidualSpec]) -> int:
        spec, (h, w, cin) = node.spec, node.input_shape
        hidden = cin * spec.expansion
        out_h, out_w = node.output_shape[:2]
        expand = h * w * cin * hidden if spec.expansion > 1 else 0
        return expand + out_h * out_w * hidden * (spec.kernel * spec.kernel + spec.filters)

    def activations(self, node: Node[InvertedResidualSpec]) -> int:
        h, w, cin = node.input_shape
        hidden = cin * node.spec.expansion
        expand = h * w * hidden if node.spec.expansion > 1 else 0
        depthwise = math.prod(node.output_shape[:2]) * hidden
        return expand + depthwise + math.prod(node.output_shape)

    def depth(self, node: Node[InvertedResidualSpec], depth_of: DepthOf) -> int:
        return 3 if node.spec.expansion > 1 else 2

    def receptive_field(self, node: Node[InvertedResidualSpec], field: Field, chain: Any) -> Field:
        return window_field(field, node.spec.kernel, node.spec.stride)

    def build(self, node: Node[InvertedResidualSpec], x: Any, ctx: BuildContext) -> Any:
        spec, path, layers = node.spec, node.path, ctx.layers
        inputs = x
        norm = norm_spec(spec.norm)
        hidden = node.input_shape[2] * spec.expansion
        if spec.expansion > 1:
            x = layers.Conv2D(hidden, 1, padding="same", use_bias=False, name=f"{path}.expand")(x)
            x = self._norm_act(node, x, norm, "expand", ctx)
        padding = "same"
        if spec.stride > 1:
            x = layers.ZeroPadding2D(correct_pad(node.input_shape, spec.kernel), name=f"{path}.pad")(x)
            padding = "valid"
        x = layers.DepthwiseConv2D(spec.kernel, strides=spec.stride, padding=padding, use_bias=False,
                                   name=f"{path}.depthwise")(x)
        x = self._norm_act(node, x, norm, "depthwise", ctx)
        x = layers.Conv2D(spec.filters, 1, padding="same", use_bias=False, name=f"{path}.project")(x)
        if norm is not None:
            x = batch_norm_layer(norm, f"{path}.project.bn", ctx)(x)
        if self.adds(node):
            x = layers.Add(name=f"{path}.add")([inputs, x])
        return x

    @staticmethod
    def _norm_act(node: Node[InvertedResidualSpec], x: Any, norm: BatchNormSpec | None, part: str,
                  ctx: BuildContext) -> Any:
        """``<unit>.<part>.bn`` then ``<unit>.<part>.<activation>``."""
        if norm is not None:
            x = batch_norm_layer(norm, f"{node.path}.{part}.bn", ctx)(x)
        function = node.spec.activation
        if function in ("none", "linear"):
            return x
        return activation_layer(function, f"{node.path}.{part}.{function}", ctx)(x)

    def describe(self, node: Node[InvertedResidualSpec]) -> str:
        """``inverted residual ×6, 3×3 /2, 24 +``; a norm or activation other than MobileNetV2's (batch
        norm, ReLU6) is named (``no BN``, ``swish``): the box has no room to repeat the usual ones."""
        spec = node.spec
        add = " +" if self.adds(node) else ""
        unusual = [*(["no BN"] if norm_spec(spec.norm) is None else []),
                   *([activation_text(spec.activation) or "linear"] if spec.activation != "relu6" else [])]
        return f"inverted residual ×{spec.expansion}, {size_text(spec.kernel)}{stride_text(spec.stride)}, " \
               f"{', '.join([str(spec.filters), *unusual])}{add}"

