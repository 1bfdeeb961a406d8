"""``inverted_residual``: MobileNetV2's unit (Sandler et al. 2018), as keras.applications builds it,
and MobileNetV3's and EfficientNet's (squeeze-and-excitation, another activation, drop path).

expand 1×1 conv → BN → ReLU6, depthwise k×k (stride) → BN → ReLU6, [squeeze-and-excitation,] project
1×1 (linear) → BN, [drop path,] and the input added back when the stride is 1 and the widths match.
``expansion: 1`` has no expand conv (the first unit of MobileNetV2, V3 and EfficientNet). A strided
depthwise conv is preceded by keras.applications' ``correct_pad`` zero padding and is ``valid``; a
stride of 1 is ``same``.

The expanded width is ``in_channels * expansion`` (a float: MobileNetV3 writes ``72 / 16``) rounded as
keras.applications' ``_make_divisible`` rounds, to a multiple of ``divisor`` (1: the nearest integer).
Squeeze-and-excitation (``se: {ratio: 0.25}``) pools the depthwise output to 1×1, reduces it with a
1×1 conv (with bias) to ``ratio`` times the expanded width (``of: hidden``, MobileNetV3) or the input
width (``of: input``, EfficientNet), rounded the same way to ``se.divisor``, applies ``se.activation``,
expands it back with a 1×1 conv (with bias), gates with ``se.gate`` and multiplies.

The unit is one leaf block whose Keras layers are made in :meth:`InvertedResidual.build`, not a
combinator of ``conv`` children: the expansion has no block fields to expand (the unit's inside is
fixed, not written by the user), the layer order and names follow keras.applications one to one
(``unit.expand``, ``unit.expand.bn``, ``unit.depthwise`` ... ``unit.add``) so weights load by order,
and the summary shows one row per unit, as MobileNetV2's table does, with the unit's own params, MACs
and a depth of 3 (2 without the expand conv).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

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
Divisor = Annotated[int, Bounded(gt=0, le=1024)]


class SqueezeExciteSpec(BlockSpec):
    """``se: {ratio: 0.25, of: hidden, divisor: 8, activation: relu, gate: hard_sigmoid}`` (MobileNetV3).

    ``ratio: 0`` is no squeeze-and-excitation, as keras.applications' ``se_ratio`` (a file can switch
    it per unit with an expression).
    """

    ratio: Annotated[float, Bounded(ge=0, le=1)] = 0.25
    of: Literal["hidden", "input"] = "hidden"
    divisor: Divisor = 1
    activation: ActivationName = "relu"
    gate: ActivationName = "sigmoid"


class InvertedResidualSpec(BlockSpec):
    """``inverted_residual: {filters: 24, expansion: 6, stride: 2}``."""

    filters: Width
    expansion: Annotated[float, Bounded(gt=0, le=MAX_EXPANSION)] = 6
    divisor: Divisor = 1
    stride: PositiveInt = 1
    kernel: PositiveInt = 3
    norm: Norm = MOBILENET_NORM
    activation: ActivationName = "relu6"
    se: SqueezeExciteSpec | None = None
    drop_path: Annotated[float, Bounded(ge=0, lt=1)] = 0.0
    seed: int | None = None


def make_divisible(value: float, divisor: int) -> int:
    """keras.applications' ``_make_divisible``: the nearest multiple of ``divisor`` (at least ``divisor``),
    one more multiple when that would lose more than 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def hidden_width(spec: InvertedResidualSpec, in_channels: int) -> int:
    """The expanded width: ``in_channels * expansion``, rounded to ``divisor``; the input's without expansion."""
    return in_channels if spec.expansion == 1 else make_divisible(in_channels * spec.expansion, spec.divisor)


def squeeze(spec: InvertedResidualSpec) -> SqueezeExciteSpec | None:
    """The unit's squeeze-and-excitation, or ``None`` (none written, or ``ratio: 0``)."""
    return spec.se if spec.se is not None and spec.se.ratio > 0 else None


def se_width(se: SqueezeExciteSpec, in_channels: int, hidden: int) -> int:
    """The squeezed width of squeeze-and-excitation."""
    return make_divisible((hidden if se.of == "hidden" else in_channels) * se.ratio, se.divisor)


def correct_pad(shape: Shape, kernel: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """keras.applications' ``imagenet_utils.correct_pad``: one pixel less at the top/left of an even side.

    A 1×1 kernel needs no padding (keras.applications' formula would ask for -1 there).
    """
    half = kernel // 2
    return (max(0, half - (1 - shape[0] % 2)), half), (max(0, half - (1 - shape[1] % 2)), half)


def _parts(spec: InvertedResidualSpec, shape: Shape, site: Site) -> tuple[int, Shape, Shape]:
    """The expanded width, the depthwise conv's output shape and the unit's output shape."""
    require_image(shape, site)
    hidden = hidden_width(spec, shape[2])
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

    @staticmethod
    def expands(spec: InvertedResidualSpec) -> bool:
        """Whether the unit has an expand conv (not with ``expansion: 1``)."""
        return spec.expansion != 1

    def params(self, node: Node[InvertedResidualSpec]) -> int:
        spec, cin = node.spec, node.input_shape[2]
        hidden = hidden_width(spec, cin)
        norm = norm_spec(spec.norm)
        expand = cin * hidden + norm_params(norm, hidden) if self.expands(spec) else 0
        depthwise = spec.kernel * spec.kernel * hidden + norm_params(norm, hidden)
        se, squeezed = squeeze(spec), 0
        if se is not None:
            width = se_width(se, cin, hidden)
            squeezed = (hidden * width + width) + (width * hidden + hidden)
        project = hidden * spec.filters + norm_params(norm, spec.filters)
        return expand + depthwise + squeezed + project

    def macs(self, node: Node[InvertedResidualSpec]) -> int:
        spec, (h, w, cin) = node.spec, node.input_shape
        hidden = hidden_width(spec, cin)
        out_h, out_w = node.output_shape[:2]
        expand = h * w * cin * hidden if self.expands(spec) else 0
        se = squeeze(spec)
        squeezed = 2 * hidden * se_width(se, cin, hidden) if se is not None else 0
        return expand + out_h * out_w * hidden * (spec.kernel * spec.kernel + spec.filters) + squeezed

    def activations(self, node: Node[InvertedResidualSpec]) -> int:
        h, w, cin = node.input_shape
        hidden = hidden_width(node.spec, cin)
        expand = h * w * hidden if self.expands(node.spec) else 0
        depthwise = math.prod(node.output_shape[:2]) * hidden
        gated = depthwise if squeeze(node.spec) is not None else 0
        return expand + depthwise + gated + math.prod(node.output_shape)

    def depth(self, node: Node[InvertedResidualSpec], depth_of: DepthOf) -> int:
        """expand, depthwise and project convs; the two 1×1 convs of squeeze-and-excitation on the way."""
        return int(self.expands(node.spec)) + 2 + (2 if squeeze(node.spec) is not None else 0)

    def receptive_field(self, node: Node[InvertedResidualSpec], field: Field, chain: Any) -> Field:
        return window_field(field, node.spec.kernel, node.spec.stride)

    def build(self, node: Node[InvertedResidualSpec], x: Any, ctx: BuildContext) -> Any:
        spec, path, layers = node.spec, node.path, ctx.layers
        inputs = x
        norm = norm_spec(spec.norm)
        hidden = hidden_width(spec, node.input_shape[2])
        if self.expands(spec):
            x = layers.Conv2D(hidden, 1, padding="same", use_bias=False, name=f"{path}.expand")(x)
            x = self._norm_act(node, x, norm, "expand", ctx)
        padding = "same"
        if spec.stride > 1:
            x = layers.ZeroPadding2D(correct_pad(node.input_shape, spec.kernel), name=f"{path}.pad")(x)
            padding = "valid"
        x = layers.DepthwiseConv2D(spec.kernel, strides=spec.stride, padding=padding, use_bias=False,
                                   name=f"{path}.depthwise")(x)
        x = self._norm_act(node, x, norm, "depthwise", ctx)
        se = squeeze(spec)
        if se is not None:
            x = self._squeeze_excite(node, se, x, hidden, ctx)
        x = layers.Conv2D(spec.filters, 1, padding="same", use_bias=False, name=f"{path}.project")(x)
        if norm is not None:
            x = batch_norm_layer(norm, f"{path}.project.bn", ctx)(x)
        if self.adds(node):
            if spec.drop_path > 0:
                from blockbuilder.compiler.drop_path import StochasticDepth

                x = StochasticDepth(spec.drop_path, seed=spec.seed, name=f"{path}.drop_path")(x)
            x = layers.Add(name=f"{path}.add")([inputs, x])
        return x

    @staticmethod
    def _squeeze_excite(node: Node[InvertedResidualSpec], se: SqueezeExciteSpec, x: Any, hidden: int,
                        ctx: BuildContext) -> Any:
        """``<unit>.se.squeeze`` (1×1 average), ``.reduce`` and ``.expand`` (1×1 convs), ``.excite`` (multiply)."""
        prefix, layers = f"{node.path}.se", ctx.layers
        gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}.squeeze")(x)
        gate = layers.Conv2D(se_width(se, node.input_shape[2], hidden), 1, name=f"{prefix}.reduce")(gate)
        if se.activation not in ("none", "linear"):
            gate = activation_layer(se.activation, f"{prefix}.reduce.{se.activation}", ctx)(gate)
        gate = layers.Conv2D(hidden, 1, name=f"{prefix}.expand")(gate)
        if se.gate not in ("none", "linear"):
            gate = activation_layer(se.gate, f"{prefix}.expand.{se.gate}", ctx)(gate)
        return layers.Multiply(name=f"{prefix}.excite")([x, gate])

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
                   *([activation_text(spec.activation) or "linear"] if spec.activation != "relu6" else []),
                   *([f"SE {se.ratio:g}"] if (se := squeeze(spec)) is not None else [])]
        return f"inverted residual ×{spec.expansion:g}, {size_text(spec.kernel)}{stride_text(spec.stride)}, " \
               f"{', '.join([str(spec.filters), *unusual])}{add}"

