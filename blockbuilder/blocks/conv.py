"""``conv``: a 2-D convolution with optional normalisation and activation (one weight layer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from blockbuilder.blocks.activation import ActivationName, activation_text, apply_activation
from blockbuilder.blocks.batchnorm import Norm, apply_norm, norm_params, norm_spec, norm_text
from blockbuilder.blocks.geometry import (
    Padding,
    PositiveInt,
    Size,
    Width,
    padding_amounts,
    pair,
    size_text,
    spatial_output,
    stride_text,
    window_field,
)
from blockbuilder.blocks.registry import Block, BlockSpec, Field, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext

#: Keras initializers a conv kernel may use by name (``identity`` needs a square 2-D kernel: not here).
Initializer = Literal[
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
    "zeros", "ones", "random_normal", "random_uniform", "truncated_normal", "variance_scaling", "orthogonal",
]


class ConvSpec(BlockSpec):
    """``conv: {filters: 64, kernel: 3, stride: 1, norm: batchnorm, activation: relu}``."""

    filters: Width
    kernel: Size = 3
    stride: Size = 1
    padding: Padding = "same"
    dilation: Size = 1
    groups: PositiveInt = 1
    use_bias: bool = True
    norm: Norm = "none"
    activation: ActivationName = "none"
    order: Literal["post", "pre"] = "post"
    kernel_initializer: Initializer = "glorot_uniform"


def explicit_pad(node: Node[Any], x: Any, padding: Any, ctx: BuildContext) -> Any:
    """Zero padding before a window whose ``padding`` is a number (PyTorch style)."""
    if isinstance(padding, str) or padding == 0:
        return x
    return ctx.layers.ZeroPadding2D(padding_amounts(padding), name=f"{node.path}.pad")(x)


def keras_padding(padding: Any) -> str:
    return padding if isinstance(padding, str) else "valid"


def apply_window(node: Node[Any], x: Any, layer: Any, ctx: BuildContext) -> Any:
    """A conv-like ``layer`` with the node's explicit padding, and its norm and activation after it
    (``order: post``) or before it (``order: pre``, pre-activation)."""
    spec = node.spec
    if spec.order == "pre":
        x = apply_activation(node, apply_norm(node, x, spec.norm, ctx), spec.activation, ctx)
    x = layer(explicit_pad(node, x, spec.padding, ctx))
    if spec.order == "post":
        x = apply_activation(node, apply_norm(node, x, spec.norm, ctx), spec.activation, ctx)
    return x


def window_output(site: Site, shape: Shape, spec: Any) -> tuple[int, int]:
    """The height and width a convolution of ``spec`` (kernel, stride, padding, dilation) gives ``shape``;
    a stride and a dilation both above 1 are refused (Keras cannot build them)."""
    h, w = spatial_output(site, shape, spec.kernel, spec.stride, spec.padding, spec.dilation)
    if max(pair(spec.stride)) > 1 and max(pair(spec.dilation)) > 1:
        raise site.error("stride and dilation cannot both be above 1", "dilation")
    return h, w


def window_text(node: Node[Any], core: str) -> str:
    """``core`` (``conv 3×3, 16``) with the norm and activation the spec adds, in the order they run:
    ``conv 3×3, 16, BN, ReLU``, or ``BN, ReLU, conv 3×3, 16`` for ``order: pre``."""
    spec = node.spec
    extras = [text for text in (norm_text(spec.norm), activation_text(spec.activation)) if text]
    return ", ".join([*extras, core] if spec.order == "pre" else [core, *extras])


@register_block("conv")
class Conv(Block[ConvSpec]):
    """A 2-D convolution; ``norm`` and ``activation`` follow it (``order: pre`` puts them first)."""

    Spec = ConvSpec
    scalar_key = "filters"
    counts_depth = True
    colour = "conv"

    def infer(self, spec: ConvSpec, shape: Shape, site: Site) -> Shape:
        h, w = window_output(site, shape, spec)
        channels = shape[2]
        if channels % spec.groups or spec.filters % spec.groups:
            raise site.error(f"groups={spec.groups} must divide both the input channels "
                             f"({channels}) and filters ({spec.filters})", "groups")
        return (h, w, spec.filters)

    def params(self, node: Node[ConvSpec]) -> int:
        spec = node.spec
        kh, kw = pair(spec.kernel)
        in_channels = node.input_shape[2]
        weights = kh * kw * in_channels // spec.groups * spec.filters + spec.filters * spec.use_bias
        norm_channels = spec.filters if spec.order == "post" else in_channels
        return weights + norm_params(norm_spec(spec.norm), norm_channels)

    def macs(self, node: Node[ConvSpec]) -> int:
        kh, kw = pair(node.spec.kernel)
        h, w, out = node.output_shape
        return h * w * out * kh * kw * node.input_shape[2] // node.spec.groups

    def receptive_field(self, node: Node[ConvSpec], field: Field, chain: Any) -> Field:
        return window_field(field, node.spec.kernel, node.spec.stride, node.spec.dilation)

    def build(self, node: Node[ConvSpec], x: Any, ctx: BuildContext) -> Any:
        spec = node.spec
        layer = ctx.layers.Conv2D(
            spec.filters, pair(spec.kernel), strides=pair(spec.stride), padding=keras_padding(spec.padding),
            dilation_rate=pair(spec.dilation), groups=spec.groups, use_bias=spec.use_bias,
            kernel_initializer=spec.kernel_initializer, name=node.path,
        )
        return apply_window(node, x, layer, ctx)

    def describe(self, node: Node[ConvSpec]) -> str:
        spec = node.spec
        groups = f", g{spec.groups}" if spec.groups > 1 else ""
        return window_text(node, f"conv {size_text(spec.kernel)}{stride_text(spec.stride)}, {spec.filters}{groups}")
