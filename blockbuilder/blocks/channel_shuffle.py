"""``channel_shuffle``: ShuffleNet's channel shuffle (Zhang et al. 2018; Ma et al. 2018), no weights."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blockbuilder.blocks.geometry import PositiveInt
from blockbuilder.blocks.registry import Block, BlockSpec, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class ChannelShuffleSpec(BlockSpec):
    """``channel_shuffle: 2``: the channels as a ``groups × C/groups`` matrix, transposed."""

    groups: PositiveInt


@register_block("channel_shuffle")
class ChannelShuffle(Block[ChannelShuffleSpec]):
    """Interleaves `groups` groups of channels (channel `g·C/groups + j` goes to `j·groups + g`), as torchvision."""

    Spec = ChannelShuffleSpec
    scalar_key = "groups"

    def infer(self, spec: ChannelShuffleSpec, shape: Shape, site: Site) -> Shape:
        if not shape or shape[-1] % spec.groups:
            raise site.error(f"groups={spec.groups} must divide the input's {shape[-1] if shape else 0} channels",
                             "groups")
        return shape

    def build(self, node: Node[ChannelShuffleSpec], x: Any, ctx: BuildContext) -> Any:
        from blockbuilder.compiler.custom_layers import ChannelShuffle as ChannelShuffleLayer

        return ChannelShuffleLayer(node.spec.groups, name=node.path)(x)

    def describe(self, node: Node[ChannelShuffleSpec]) -> str:
        return f"channel shuffle, {node.spec.groups} groups"
