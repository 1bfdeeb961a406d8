"""Primitive blocks: one Keras layer each, or a conv with its normalisation and activation."""

from __future__ import annotations

import math
from typing import Any, Literal, Union

from pydantic import Field, NonNegativeInt, PositiveInt

from blockbuilder.blocks.registry import Block, BlockSpec, Node, Shape, register_block

ActivationName = Literal[
    "none", "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "swish", "silu",
    "tanh", "sigmoid", "hard_sigmoid", "softmax", "softplus", "scaled_tanh",
]
Size = Union[PositiveInt, tuple[PositiveInt, PositiveInt]]
Padding = Union[Literal["same", "valid"], NonNegativeInt, tuple[NonNegativeInt, NonNegativeInt]]
MAX_WIDTH = 1 << 20


class BatchNormSpec(BlockSpec):
    """Batch normalisation settings (``batchnorm`` block, or a conv's ``norm``)."""

    epsilon: float = Field(1e-3, gt=0)
    momentum: float = Field(0.99, ge=0, le=1)
    center: bool = True
    scale: bool = True


Norm = Union[Literal["none", "batchnorm"], BatchNormSpec]


class ConvSpec(BlockSpec):
    """``conv``: a 2-D convolution with optional normalisation and activation."""

    filters: PositiveInt = Field(le=MAX_WIDTH)
    kernel: Size = 3
    stride: Size = 1
    padding: Padding = "same"
    dilation: Size = 1
    groups: PositiveInt = 1
    use_bias: bool = True
    norm: Norm = "none"
    activation: ActivationName = "none"
    order: Literal["post", "pre"] = "post"
    kernel_initializer: str = "glorot_uniform"


class DepthwiseConvSpec(BlockSpec):
    """``depthwise_conv``: one filter (or ``depth_multiplier``) per input channel."""

    kernel: Size = 3
    stride: Size = 1
    padding: Padding = "same"
    dilation: Size = 1
    depth_multiplier: PositiveInt = Field(1, le=1024)
    use_bias: bool = True
    norm: Norm = "none"
    activation: ActivationName = "none"
    order: Literal["post", "pre"] = "post"


class PoolSpec(BlockSpec):
    """``max_pool`` / ``avg_pool``: ``stride`` defaults to ``size``."""

    size: Size = 2
    stride: Size | None = None
    padding: Literal["same", "valid"] = "valid"


class GlobalPoolSpec(BlockSpec):
    """``global_avg_pool`` / ``global_max_pool``."""

    keepdims: bool = False


class DenseSpec(BlockSpec):
    """``dense``: a fully connected layer on the last axis."""

    units: PositiveInt = Field(le=MAX_WIDTH)
    activation: ActivationName = "none"
    use_bias: bool = True


class DropoutSpec(BlockSpec):
    """``dropout``: zero a fraction ``rate`` of activations while training."""

    rate: float = Field(ge=0, lt=1)


class ActivationSpec(BlockSpec):
    """``activation``: a non-linearity (``scaled_tanh`` is LeNet's 1.7159·tanh(2x/3))."""

    function: ActivationName


class ZeroPadSpec(BlockSpec):
    """``zero_pad``: ``padding: 2``, ``[h, w]`` or ``[[top, bottom], [left, right]]``."""

    padding: Union[NonNegativeInt, tuple[NonNegativeInt, NonNegativeInt],
                   tuple[tuple[NonNegativeInt, NonNegativeInt], tuple[NonNegativeInt, NonNegativeInt]]]


class EmptySpec(BlockSpec):
    """A block without arguments."""


def pair(value: Any) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(3, 1)`` stays."""
    return (value, value) if isinstance(value, int) else tuple(value)


def padding_amounts(padding: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """Explicit zero padding as ``((top, bottom), (left, right))``."""
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    if isinstance(padding[0], int):
        return (padding[0], padding[0]), (padding[1], padding[1])
    return tuple(padding[0]), tuple(padding[1])


def window_output(size: int, kernel: int, stride: int, padding: Any, dilation: int = 1) -> int:
    """Output length of a sliding window, following Keras' ``same``/``valid`` rules."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def spatial_output(node: Node, shape: Shape, kernel: Any, stride: Any, padding: Any,
                   dilation: Any = 1) -> tuple[int, int]:
    """Height and width after a window op; an error at the block when one reaches zero."""
    if len(shape) != 3:
        raise node.error(f"expects an image input (height, width, channels), got shape {list(shape)}")
    h, w = shape[0], shape[1]
    mode = padding
    if not isinstance(padding, str):
        (top, bottom), (left, right) = padding_amounts(padding)
        h, w, mode = h + top + bottom, w + left + right, "valid"
    (kh, kw), (sh, sw), (dh, dw) = pair(kernel), pair(stride), pair(dilation)
    out = (window_output(h, kh, sh, mode, dh), window_output(w, kw, sw, mode, dw))
    if min(out) <= 0:
        raise node.error(f"a {kh}x{kw} window on a {h}x{w} input gives an output of "
                         f"{out[0]}x{out[1]}: the spatial size shrinks to zero")
    return out


def window_field(field: Any, kernel: Any, stride: Any, dilation: Any = 1) -> Any:
    """Receptive field ``(size, jump)`` after a sliding window (the larger of height and width)."""
    if field is None:
        return None
    size, jump = field
    span = max(d * (k - 1) for k, d in zip(pair(kernel), pair(dilation)))
    return size + span * jump, jump * max(pair(stride))


def _undefined_field(self, node, field, chain):
    return None


def norm_spec(norm: Any) -> BatchNormSpec | None:
    """The batch-norm settings a conv asks for, or ``None``."""
    if norm == "none":
        return None
    return BatchNormSpec() if norm == "batchnorm" else norm


def norm_params(norm: BatchNormSpec | None, channels: int) -> int:
    if norm is None:
        return 0
    return channels * (2 + int(norm.center) + int(norm.scale))


@register_block("conv")
class Conv(Block):
    """``conv: {filters: 64, kernel: 3, stride: 1, norm: batchnorm, activation: relu}``."""

    Spec = ConvSpec
    scalar_key = "filters"
    counts_depth = True

    def infer(self, node, shape, ex):
        spec = node.spec
        h, w = spatial_output(node, shape, spec.kernel, spec.stride, spec.padding, spec.dilation)
        channels = shape[2]
        if channels % spec.groups or spec.filters % spec.groups:
            raise node.error(f"groups={spec.groups} must divide both the input channels "
                             f"({channels}) and filters ({spec.filters})", "groups")
        if max(pair(spec.stride)) > 1 and max(pair(spec.dilation)) > 1:
            raise node.error("stride and dilation cannot both be above 1", "dilation")
        return (h, w, spec.filters)

    def params(self, node):
        spec = node.spec
        kh, kw = pair(spec.kernel)
        in_channels = node.input_shape[2]
        weights = kh * kw * in_channels // spec.groups * spec.filters + spec.filters * spec.use_bias
        norm_channels = spec.filters if spec.order == "post" else in_channels
        return weights + norm_params(norm_spec(spec.norm), norm_channels)

    def receptive_field(self, node, field, chain):
        return window_field(field, node.spec.kernel, node.spec.stride, node.spec.dilation)

    def macs(self, node):
        spec = node.spec
        kh, kw = pair(spec.kernel)
        h, w, out = node.output_shape
        return h * w * out * kh * kw * node.input_shape[2] // spec.groups

    def build(self, node, x, ctx):
        spec = node.spec
        if spec.order == "pre":
            x = ctx.norm(node, x, spec.norm)
            x = ctx.activation(node, x, spec.activation)
        x = ctx.explicit_pad(node, x, spec.padding)
        x = ctx.layers.Conv2D(
            spec.filters, pair(spec.kernel), strides=pair(spec.stride),
            padding=spec.padding if isinstance(spec.padding, str) else "valid",
            dilation_rate=pair(spec.dilation), groups=spec.groups, use_bias=spec.use_bias,
            kernel_initializer=spec.kernel_initializer, name=node.path,
        )(x)
        if spec.order == "post":
            x = ctx.norm(node, x, spec.norm)
            x = ctx.activation(node, x, spec.activation)
        return x


@register_block("depthwise_conv")
class DepthwiseConv(Block):
    """``depthwise_conv: {kernel: 3, stride: 1, depth_multiplier: 1}``."""

    Spec = DepthwiseConvSpec
    counts_depth = True

    def infer(self, node, shape, ex):
        spec = node.spec
        h, w = spatial_output(node, shape, spec.kernel, spec.stride, spec.padding, spec.dilation)
        return (h, w, shape[2] * spec.depth_multiplier)

    def params(self, node):
        spec = node.spec
        kh, kw = pair(spec.kernel)
        out = node.output_shape[2]
        return kh * kw * out + out * spec.use_bias + norm_params(norm_spec(spec.norm), out)

    def macs(self, node):
        kh, kw = pair(node.spec.kernel)
        return math.prod(node.output_shape) * kh * kw

    def receptive_field(self, node, field, chain):
        return window_field(field, node.spec.kernel, node.spec.stride, node.spec.dilation)

    def build(self, node, x, ctx):
        spec = node.spec
        if spec.order == "pre":
            x = ctx.norm(node, x, spec.norm)
            x = ctx.activation(node, x, spec.activation)
        x = ctx.explicit_pad(node, x, spec.padding)
        x = ctx.layers.DepthwiseConv2D(
            pair(spec.kernel), strides=pair(spec.stride),
            padding=spec.padding if isinstance(spec.padding, str) else "valid",
            depth_multiplier=spec.depth_multiplier, dilation_rate=pair(spec.dilation),
            use_bias=spec.use_bias, name=node.path,
        )(x)
        if spec.order == "post":
            x = ctx.norm(node, x, spec.norm)
            x = ctx.activation(node, x, spec.activation)
        return x


class _Pool(Block):
    Spec = PoolSpec
    scalar_key = "size"
    keras_class = ""

    def infer(self, node, shape, ex):
        spec = node.spec
        stride = spec.stride or spec.size
        h, w = spatial_output(node, shape, spec.size, stride, spec.padding)
        return (h, w, shape[2])

    def receptive_field(self, node, field, chain):
        return window_field(field, node.spec.size, node.spec.stride or node.spec.size)

    def build(self, node, x, ctx):
        spec = node.spec
        layer = getattr(ctx.layers, self.keras_class)
        return layer(pair(spec.size), strides=pair(spec.stride or spec.size),
                     padding=spec.padding, name=node.path)(x)


@register_block("max_pool")
class MaxPool(_Pool):
    """``max_pool: {size: 2, stride: 2, padding: valid}``."""

    keras_class = "MaxPooling2D"


@register_block("avg_pool")
class AvgPool(_Pool):
    """``avg_pool: {size: 2, stride: 2, padding: valid}``."""

    keras_class = "AveragePooling2D"


class _GlobalPool(Block):
    Spec = GlobalPoolSpec
    keras_class = ""
    receptive_field = _undefined_field

    def infer(self, node, shape, ex):
        if len(shape) != 3:
            raise node.error(f"expects an image input (height, width, channels), got shape {list(shape)}")
        return (1, 1, shape[2]) if node.spec.keepdims else (shape[2],)

    def build(self, node, x, ctx):
        layer = getattr(ctx.layers, self.keras_class)
        return layer(keepdims=node.spec.keepdims, name=node.path)(x)


@register_block("global_avg_pool")
class GlobalAvgPool(_GlobalPool):
    """``global_avg_pool``: the mean over height and width."""

    keras_class = "GlobalAveragePooling2D"


@register_block("global_max_pool")
class GlobalMaxPool(_GlobalPool):
    """``global_max_pool``: the maximum over height and width."""

    keras_class = "GlobalMaxPooling2D"


@register_block("zero_pad")
class ZeroPad(Block):
    """``zero_pad: 2`` adds zeros around height and width."""

    Spec = ZeroPadSpec
    scalar_key = "padding"

    def infer(self, node, shape, ex):
        if len(shape) != 3:
            raise node.error(f"expects an image input (height, width, channels), got shape {list(shape)}")
        (top, bottom), (left, right) = padding_amounts(node.spec.padding)
        return (shape[0] + top + bottom, shape[1] + left + right, shape[2])

    def build(self, node, x, ctx):
        return ctx.layers.ZeroPadding2D(padding_amounts(node.spec.padding), name=node.path)(x)


@register_block("dense")
class Dense(Block):
    """``dense: {units: 10, activation: softmax}``."""

    Spec = DenseSpec
    scalar_key = "units"
    counts_depth = True
    receptive_field = _undefined_field

    def infer(self, node, shape, ex):
        return (*shape[:-1], node.spec.units)

    def params(self, node):
        return node.input_shape[-1] * node.spec.units + node.spec.units * node.spec.use_bias

    def macs(self, node):
        return math.prod(node.input_shape) * node.spec.units

    def build(self, node, x, ctx):
        spec = node.spec
        x = ctx.layers.Dense(spec.units, use_bias=spec.use_bias, name=node.path)(x)
        return ctx.activation(node, x, spec.activation)


@register_block("dropout")
class Dropout(Block):
    """``dropout: 0.5``."""

    Spec = DropoutSpec
    scalar_key = "rate"

    def build(self, node, x, ctx):
        return ctx.layers.Dropout(node.spec.rate, name=node.path)(x)


@register_block("batchnorm")
class BatchNorm(Block):
    """``batchnorm: {epsilon: 1.001e-5}``."""

    Spec = BatchNormSpec

    def params(self, node):
        return norm_params(node.spec, node.output_shape[-1])

    def build(self, node, x, ctx):
        spec = node.spec
        return ctx.layers.BatchNormalization(
            epsilon=spec.epsilon, momentum=spec.momentum, center=spec.center, scale=spec.scale,
            name=node.path,
        )(x)


@register_block("activation")
class Activation(Block):
    """``activation: relu``."""

    Spec = ActivationSpec
    scalar_key = "function"

    def build(self, node, x, ctx):
        return ctx.activation_layer(node.spec.function, node.path)(x)


@register_block("flatten")
class Flatten(Block):
    """``flatten``: everything but the batch axis in one vector."""

    Spec = EmptySpec
    receptive_field = _undefined_field

    def infer(self, node, shape, ex):
        return (math.prod(shape),)

    def build(self, node, x, ctx):
        return ctx.layers.Flatten(name=node.path)(x)


class ChannelPadSpec(BlockSpec):
    """``channel_pad: {channels: 64}``: appends zero channels up to ``channels``."""

    channels: PositiveInt = Field(le=MAX_WIDTH)


@register_block("channel_pad")
class ChannelPad(Block):
    """Zero channels appended (the parameter-free shortcut of ResNet option A and PyramidNet)."""

    Spec = ChannelPadSpec
    scalar_key = "channels"

    def infer(self, node, shape, ex):
        if node.spec.channels < shape[-1]:
            raise node.error(f"cannot pad {shape[-1]} channels down to {node.spec.channels}", "channels")
        return (*shape[:-1], node.spec.channels)

    def build(self, node, x, ctx):
        from blockbuilder.compiler.layers import ChannelPad as ChannelPadLayer

        return ChannelPadLayer(node.spec.channels - node.input_shape[-1], name=node.path)(x)


@register_block("identity")
class Identity(Block):
    """``identity``: passes its input on (a branch path that does nothing)."""

    Spec = EmptySpec

    def build(self, node, x, ctx):
        return x


