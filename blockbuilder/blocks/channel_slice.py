"""``channel_slice``: a run of the input's channels (ShuffleNet v2's channel split is two of them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field as Bounded

from blockbuilder.blocks.geometry import Width
from blockbuilder.blocks.registry import Block, BlockSpec, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class ChannelSliceSpec(BlockSpec):
    """``channel_slice: {start: 0, stop: "${in_channels // 2}"}``: channels ``start`` to ``stop`` (excluded)."""

    start: Annotated[int, Bounded(ge=0)] = 0
    stop: Width | None = None


def _stop(spec: ChannelSliceSpec, channels: int) -> int:
    return channels if spec.stop is None else spec.stop


@register_block("channel_slice")
class ChannelSlice(Block[ChannelSliceSpec]):
    """Channels `start` to `stop` (excluded; `stop` defaults to the last); no weights."""

    Spec = ChannelSliceSpec

    def infer(self, spec: ChannelSliceSpec, shape: Shape, site: Site) -> Shape:
        if not shape:
            raise site.error("a channel slice needs an input with a channel axis")
        channels = shape[-1]
        stop = _stop(spec, channels)
        if stop > channels:
            raise site.error(f"stop {stop} is past the input's {channels} channels", "stop")
        if spec.start >= stop:
            raise site.error(f"start {spec.start} must be below stop {stop}: no channel would be left", "start")
        return (*shape[:-1], stop - spec.start)

    def build(self, node: Node[ChannelSliceSpec], x: Any, ctx: BuildContext) -> Any:
        from blockbuilder.compiler.custom_layers import ChannelSlice as ChannelSliceLayer

        return ChannelSliceLayer(node.spec.start, _stop(node.spec, node.input_shape[-1]), name=node.path)(x)

    def describe(self, node: Node[ChannelSliceSpec]) -> str:
        return f"channels {node.spec.start}:{_stop(node.spec, node.input_shape[-1])}"
