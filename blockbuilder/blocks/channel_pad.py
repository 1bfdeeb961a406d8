"""``channel_pad``: zero channels appended (the parameter-free shortcut of ResNet option A, PyramidNet)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blockbuilder.blocks.geometry import Width
from blockbuilder.blocks.registry import Block, BlockSpec, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class ChannelPadSpec(BlockSpec):
    """``channel_pad: {channels: 64}``: appends zero channels up to ``channels``."""

    channels: Width


@register_block("channel_pad")
class ChannelPad(Block[ChannelPadSpec]):
    """Zero channels appended up to ``channels``."""

    Spec = ChannelPadSpec
    scalar_key = "channels"

    def infer(self, spec: ChannelPadSpec, shape: Shape, site: Site) -> Shape:
        if spec.channels < shape[-1]:
            raise site.error(f"cannot pad {shape[-1]} channels down to {spec.channels}", "channels")
        return (*shape[:-1], spec.channels)

    def build(self, node: Node[ChannelPadSpec], x: Any, ctx: BuildContext) -> Any:
        from blockbuilder.compiler.custom_layers import ChannelPad as ChannelPadLayer

        return ChannelPadLayer(node.spec.channels - node.input_shape[-1], name=node.path)(x)
