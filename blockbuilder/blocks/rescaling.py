"""``rescaling``: ``x * scale + offset`` (Keras ``Rescaling``), part of the input contract a file states.

keras.applications' MobileNetV3 takes 0-255 pixels with ``rescaling: {scale: 0.00784313725490196,
offset: -1}``; EfficientNet with ``rescaling: 0.00392156862745098`` then a ``normalization``. ``scale``
and ``offset`` are one number or one per channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field as Bounded

from blockbuilder.blocks.registry import Block, BlockSpec, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext

Number = Annotated[float, Bounded(allow_inf_nan=False)]
Numbers = Union[Number, tuple[Number, ...]]


def per_channel(value: Any, shape: Shape, key: str, site: Site) -> list[float]:
    """``value`` as one number per channel; an error at ``key`` unless it is one number or one per channel."""
    values = [float(v) for v in value] if isinstance(value, tuple) else [float(value)]
    channels = shape[-1] if shape else 0
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise site.error(f"{len(values)} values for an input of {channels} channels: give one number or "
                         f"{channels}", key)
    return values


def numbers_text(value: Any) -> str:
    values = list(value) if isinstance(value, tuple) else [value]
    return ", ".join(f"{v:.4g}" for v in values)


class RescalingSpec(BlockSpec):
    """``rescaling: {scale: 0.0078431, offset: -1}``: ``x * scale + offset``."""

    scale: Numbers
    offset: Numbers = 0.0


@register_block("rescaling")
class Rescaling(Block[RescalingSpec]):
    """`x * scale + offset` (Keras `Rescaling`), one number or one per channel; no weights."""

    Spec = RescalingSpec
    scalar_key = "scale"

    def infer(self, spec: RescalingSpec, shape: Shape, site: Site) -> Shape:
        for key in ("scale", "offset"):
            per_channel(getattr(spec, key), shape, key, site)
        return shape

    def build(self, node: Node[RescalingSpec], x: Any, ctx: BuildContext) -> Any:
        spec = node.spec
        scale = list(spec.scale) if isinstance(spec.scale, tuple) else spec.scale
        offset = list(spec.offset) if isinstance(spec.offset, tuple) else spec.offset
        return ctx.layers.Rescaling(scale, offset, name=node.path)(x)

    def describe(self, node: Node[RescalingSpec]) -> str:
        offset = f" + {numbers_text(node.spec.offset)}" if node.spec.offset != 0.0 else ""
        return f"× {numbers_text(node.spec.scale)}{offset}"
