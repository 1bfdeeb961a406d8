"""``normalization``: ``(x - mean) / sqrt(variance)`` per channel (Keras ``Normalization`` with fixed statistics).

Part of the input contract a file states (keras.applications' EfficientNet starts with one). ``mean``
and ``variance`` are one number or one per channel. ``stored: true`` keeps them as non-trainable
weights (mean, variance and a count, as Keras' ``Normalization`` holds them before it is adapted), so a
weight file that holds them (EfficientNet's) loads by order; by default they are constants of the
model, in its configuration, with no weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field as Bounded

from blockbuilder.blocks.registry import Block, BlockSpec, Node, Shape, Site, register_block
from blockbuilder.blocks.rescaling import Numbers, numbers_text, per_channel

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext

Positive = Annotated[float, Bounded(gt=0, allow_inf_nan=False)]


class NormalizationSpec(BlockSpec):
    """``normalization: {mean: [0.485, 0.456, 0.406], variance: [0.052, 0.050, 0.051]}``."""

    mean: Numbers
    variance: Union[Positive, tuple[Positive, ...]]
    stored: bool = False


@register_block("normalization")
class Normalization(Block[NormalizationSpec]):
    """`(x - mean) / sqrt(variance)` per channel; `stored: true` keeps them as weights, as EfficientNet's file has them."""

    Spec = NormalizationSpec

    def infer(self, spec: NormalizationSpec, shape: Shape, site: Site) -> Shape:
        for key in ("mean", "variance"):
            per_channel(getattr(spec, key), shape, key, site)
        return shape

    def params(self, node: Node[NormalizationSpec]) -> int:
        # Stored: a mean and a variance per channel and a count, non-trainable, as Keras' Normalization.
        return 2 * node.input_shape[-1] + 1 if node.spec.stored else 0

    def build(self, node: Node[NormalizationSpec], x: Any, ctx: BuildContext) -> Any:
        spec, site = node.spec, node.site
        mean = per_channel(spec.mean, node.input_shape, "mean", site)
        variance = per_channel(spec.variance, node.input_shape, "variance", site)
        if spec.stored:
            from blockbuilder.compiler.custom_layers import StoredNormalization

            return StoredNormalization(mean, variance, name=node.path)(x)
        return ctx.layers.Normalization(mean=mean, variance=variance, name=node.path)(x)

    def describe(self, node: Node[NormalizationSpec]) -> str:
        return f"normalise, mean {numbers_text(node.spec.mean)}"
