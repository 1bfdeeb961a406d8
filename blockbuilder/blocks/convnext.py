"""``convnext_block``: ConvNeXt's unit (Liu et al. 2022), as keras.applications builds it.

depthwise 7×7 conv (with bias) → LayerNorm (ε 1e-6) → 1×1 to 4× the width (a ``Dense`` on the
channels) → GELU → 1×1 back (``Dense``) → layer scale (a learned per-channel factor, 1e-6 at first) →
stochastic depth (the whole residual branch dropped for a sample with probability ``drop_path`` while
training) → added to the input. The width is the input's: the stem and the downsampling layers
between stages change it (``conv`` and ``layer_norm`` blocks in YAML).

The unit is one leaf block whose Keras layers are made in :meth:`ConvNeXtBlock.build`, in
keras.applications' order (depthwise kernel and bias, norm, the two dense layers, the layer scale),
so weights load by order. The depthwise conv is a ``Conv2D`` with ``groups`` = width, as in
keras.applications: its kernel is ``(7, 7, 1, C)``, which is what published weights hold (a
``DepthwiseConv2D`` would be ``(7, 7, C, 1)``). Keras has no public layer-scale or stochastic-depth
layer: the layer scale is defined here, in :meth:`ConvNeXtBlock.keras_layers` (Keras is imported only when a
model is built or loaded: ``validate`` stays free of TensorFlow); stochastic depth is
:class:`blockbuilder.compiler.drop_path.StochasticDepth`, which any ``residual`` uses too.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field as Bounded

from blockbuilder.blocks.activation import ActivationName, activation_layer, activation_text
from blockbuilder.blocks.geometry import PositiveInt, require_image, size_text, spatial_output, window_field
from blockbuilder.blocks.registry import Block, BlockSpec, DepthOf, Field, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext

MAX_EXPANSION = 64


class ConvNeXtSpec(BlockSpec):
    """``convnext_block: {drop_path: 0.1}``; the width is the input's."""

    kernel: PositiveInt = 7
    expansion: Annotated[int, Bounded(gt=0, le=MAX_EXPANSION)] = 4
    epsilon: Annotated[float, Bounded(gt=0)] = 1e-6
    activation: ActivationName = "gelu"
    layer_scale: Annotated[float, Bounded(gt=0)] | None = 1e-6
    drop_path: Annotated[float, Bounded(ge=0, lt=1)] = 0.0
    seed: int | None = None


@register_block("convnext_block")
class ConvNeXtBlock(Block[ConvNeXtSpec]):
    """ConvNeXt's block: depthwise 7×7, LayerNorm, 1×1 ×4, GELU, 1×1, layer scale, drop path, add."""

    Spec = ConvNeXtSpec
    colour = "conv"

    def infer(self, spec: ConvNeXtSpec, shape: Shape, site: Site) -> Shape:
        require_image(shape, site)
        spatial_output(site, shape, spec.kernel, 1, "same")
        return shape

    def params(self, node: Node[ConvNeXtSpec]) -> int:
        spec, width = node.spec, node.input_shape[2]
        hidden = width * spec.expansion
        depthwise = spec.kernel * spec.kernel * width + width
        norm = 2 * width
        pointwise = (width * hidden + hidden) + (hidden * width + width)
        scale = width if spec.layer_scale is not None else 0
        return depthwise + norm + pointwise + scale

    def macs(self, node: Node[ConvNeXtSpec]) -> int:
        spec, (h, w, width) = node.spec, node.input_shape
        return h * w * width * (spec.kernel * spec.kernel + 2 * width * spec.expansion)

    def activations(self, node: Node[ConvNeXtSpec]) -> int:
        # depthwise, norm and the second 1x1 keep C values a position; the first 1x1 and GELU 4C each.
        return math.prod(node.output_shape) * (3 + 2 * node.spec.expansion)

    def depth(self, node: Node[ConvNeXtSpec], depth_of: DepthOf) -> int:
        return 3

    def receptive_field(self, node: Node[ConvNeXtSpec], field: Field, chain: Any) -> Field:
        return window_field(field, node.spec.kernel, 1)

    def build(self, node: Node[ConvNeXtSpec], x: Any, ctx: BuildContext) -> Any:
        spec, path, layers = node.spec, node.path, ctx.layers
        layer_scale, stochastic_depth = self.keras_layers()
        width = node.input_shape[2]
        inputs = x
        x = layers.Conv2D(width, spec.kernel, padding="same", groups=width, name=f"{path}.depthwise")(x)
        x = layers.LayerNormalization(epsilon=spec.epsilon, name=f"{path}.norm")(x)
        x = layers.Dense(width * spec.expansion, name=f"{path}.pointwise1")(x)
        if spec.activation not in ("none", "linear"):
            x = activation_layer(spec.activation, f"{path}.{spec.activation}", ctx)(x)
        x = layers.Dense(width, name=f"{path}.pointwise2")(x)
        if spec.layer_scale is not None:
            x = layer_scale(spec.layer_scale, name=f"{path}.layer_scale")(x)
        if spec.drop_path > 0:
            x = stochastic_depth(spec.drop_path, seed=spec.seed, name=f"{path}.drop_path")(x)
        return layers.Add(name=f"{path}.add")([inputs, x])

    def keras_layers(self) -> tuple[type, ...]:
        return _keras_layers()

    def describe(self, node: Node[ConvNeXtSpec]) -> str:
        """``convnext 7×7, 96×4``; an activation other than ConvNeXt's GELU is named (``, ReLU``)."""
        spec = node.spec
        activation = f", {activation_text(spec.activation) or 'linear'}" if spec.activation != "gelu" else ""
        drop = f", drop {spec.drop_path:g}" if spec.drop_path else ""
        return f"convnext {size_text(spec.kernel)}, {node.output_shape[-1]}×{spec.expansion}{activation}{drop}"


@functools.cache
def _keras_layers() -> tuple[type, type]:
    """``LayerScale``, made (and registered) once, when Keras is first needed, and ``StochasticDepth``."""
    import keras
    from keras import ops

    from blockbuilder.compiler.drop_path import StochasticDepth

    @keras.saving.register_keras_serializable(package="blockbuilder")
    class LayerScale(keras.layers.Layer):  # type: ignore[misc]
        """Multiplies each channel by a learned factor that starts at ``init_value`` (CaiT, ConvNeXt).

        Args:
            init_value: The factor every channel starts with.
        """

        def __init__(self, init_value: float = 1e-6, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.init_value = float(init_value)

        def build(self, input_shape: Any) -> None:
            self.gamma = self.add_weight(shape=(input_shape[-1],), name="gamma",
                                         initializer=keras.initializers.Constant(self.init_value))

        def call(self, inputs: Any) -> Any:
            return inputs * ops.cast(self.gamma, inputs.dtype)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "init_value": self.init_value}

    return LayerScale, StochasticDepth
