"""How parallel tensors are merged (``add``, ``concat``, ``mean``, ``multiply``): shapes and layers, and the
``merge`` block, which merges the blocks its ``from:`` names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from blockbuilder.blocks.registry import Block, BlockSpec, Node, Shape, Site, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


def merge_shapes(site: Site, shapes: Sequence[Shape], merge: str, names: Sequence[str]) -> Shape:
    """The shape after merging; an error naming both shapes when they do not fit."""
    first = shapes[0]
    if merge == "multiply":
        return _gate_shape(site, shapes, names)
    for name, shape in zip(names[1:], shapes[1:]):
        if merge == "concat":
            if shape[:-1] != first[:-1]:
                raise site.error(f"cannot concat {names[0]} {list(first)} with {name} {list(shape)}: "
                                 "spatial sizes differ")
        elif shape != first:
            raise site.error(f"cannot {merge} {names[0]} {list(first)} and {name} {list(shape)}: shapes differ")
    if merge == "concat":
        return (*first[:-1], sum(s[-1] for s in shapes))
    return first


def _gate_shape(site: Site, shapes: Sequence[Shape], names: Sequence[str]) -> Shape:
    """``multiply`` broadcasts: a [1, 1, C] gate may scale an [H, W, C] tensor (squeeze-and-excitation)."""
    out = shapes[0]
    for name, shape in zip(names[1:], shapes[1:]):
        if len(out) != len(shape) or any(a != b and 1 not in (a, b) for a, b in zip(out, shape)):
            raise site.error(f"cannot multiply {names[0]} {list(shapes[0])} and {name} {list(shape)}: "
                             "shapes do not broadcast")
        out = tuple(max(a, b) for a, b in zip(out, shape))
    return out


def merge_layer(how: str, tensors: list[Any], name: str, ctx: BuildContext) -> Any:
    """Merge tensors by ``add``, ``concat``, ``mean`` or ``multiply`` (which broadcasts)."""
    layers = ctx.layers
    if how == "add":
        return layers.Add(name=name)(tensors)
    if how == "multiply":
        return layers.Multiply(name=name)(tensors)
    if how == "mean":
        return layers.Average(name=name)(tensors)
    return layers.Concatenate(axis=-1, name=name)(tensors)


MAX_INPUTS = 64


class MergeSpec(BlockSpec):
    """``merge: add`` with ``from: [a, b]``."""

    by: Literal["add", "concat", "mean", "multiply"]


@register_block("merge")
class Merge(Block[MergeSpec]):
    """Merges the blocks named in ``from:`` (a U-Net skip, a NASNet cell's sum); one input passes on."""

    Spec = MergeSpec
    scalar_key = "by"
    inputs = (1, MAX_INPUTS)

    def infer_inputs(self, spec: MergeSpec, shapes: Sequence[Shape], names: Sequence[str], site: Site) -> Shape:
        return merge_shapes(site, shapes, spec.by, names)

    def build(self, node: Node[MergeSpec], x: Any, ctx: BuildContext) -> Any:
        return merge_layer(node.spec.by, ctx.inputs(node, x), node.path, ctx)

    def describe(self, node: Node[MergeSpec]) -> str:
        return f"merge: {node.spec.by}"


def source_names(node: Node[Any]) -> list[str]:
    """The blocks a node reads, by name (``PATH:input``: the input of the block at ``PATH``)."""
    names = []
    for key in node.sources:
        path, _, tail = key.partition(":")
        name = path.rpartition(".")[2]
        names.append(f"{name} input" if tail and name else "input" if tail else name)
    return names
