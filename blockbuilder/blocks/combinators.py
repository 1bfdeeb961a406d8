"""Combinators: blocks made of blocks (sequence, repeat, residual, branch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from blockbuilder.language.document import Map
from blockbuilder.blocks.registry import Block, BlockSpec, Node, Shape, register_block

MAX_REPEAT = 10_000


class SequenceSpec(BlockSpec):
    """``sequence: [...]``: blocks one after another."""


class RepeatSpec(BlockSpec):
    """``repeat: {times: 3, body: [...]}``; the index (from 0) is ``i`` unless ``index`` renames it."""

    times: PositiveInt = Field(le=MAX_REPEAT)
    index: str = Field("i", pattern=r"^[A-Za-z_]\w*$")


class ResidualSpec(BlockSpec):
    """``residual``: ``merge(body(x'), shortcut(x'))`` then ``after``, where ``x' = pre(x)``."""

    shortcut: Literal["auto", "identity", "projection", "zero_pad"] | None = "auto"
    shortcut_from: Literal["input", "pre"] = "input"
    merge: Literal["add", "concat", "multiply"] = "add"
    downsample: Literal["subsample", "avg_pool"] = "subsample"


class BranchSpec(BlockSpec):
    """``branch: {paths: [[...], [...]], merge: concat}``: parallel paths, merged."""

    merge: Literal["concat", "add", "mean"] = "concat"


@register_block("sequence")
class Sequence(Block):
    """``sequence: [conv: ..., conv: ...]`` groups blocks under one name."""

    Spec = SequenceSpec
    block_fields = ("body",)

    def infer(self, node, shape, ex):
        return ex.expand_field(node, "body", shape)

    def receptive_field(self, node, field, chain):
        return chain(node.children.get("body", []), field)

    def build(self, node, x, ctx):
        return ctx.build_all(node.children.get("body", []), x)


@register_block("repeat")
class Repeat(Block):
    """``repeat: {times: N, body: [...]}`` -- the body N times; ``$i`` counts from 0."""

    Spec = RepeatSpec
    block_fields = ("body",)
    scalar_key = "times"

    def infer(self, node, shape, ex):
        spec = node.spec
        ex.check_repeat(spec.times, node)
        body = node.raw.get("body")
        if body is None:
            raise node.error("a repeat needs a 'body'", "body")
        single = not hasattr(body, "__len__") or isinstance(body, dict) or len(body) == 1
        counters: dict[str, int] = {}
        for index in range(spec.times):
            shape = ex.expand_field(node, "body", shape, bindings={spec.index: index},
                                    counters=counters, group=None if single else f"unit{index + 1}")
        return shape

    def receptive_field(self, node, field, chain):
        return chain(node.children.get("body", []), field)

    def build(self, node, x, ctx):
        return ctx.build_all(node.children.get("body", []), x)


@register_block("residual")
class Residual(Block):
    """A residual unit: ``shortcut: auto`` is the identity, or a 1x1 projection when shapes differ."""

    Spec = ResidualSpec
    block_fields = ("pre", "body", "shortcut", "after")

    def infer(self, node, shape, ex):
        if isinstance(node.raw.get("after"), str):
            node.raw["after"] = Map({"activation": node.raw["after"]}, loc=node.loc)
        custom = node.raw.get("shortcut")
        if isinstance(custom, str):
            node.raw.pop("shortcut")
            node.spec = node.spec.model_copy(update={"shortcut": _shortcut_kind(custom, node)})
        elif custom is not None:
            node.spec = node.spec.model_copy(update={"shortcut": None})
        pre_shape = ex.expand_field(node, "pre", shape)
        body_shape = ex.expand_field(node, "body", pre_shape)
        source = pre_shape if node.spec.shortcut_from == "pre" else shape
        short_shape = (ex.expand_field(node, "shortcut", source) if custom is not None and
                       node.spec.shortcut is None else self._shortcut(node, source, body_shape, ex))
        merged = merge_shapes(node, [body_shape, short_shape], node.spec.merge, ("body", "shortcut"))
        return ex.expand_field(node, "after", merged)

    def _shortcut(self, node: Node, shape: Shape, target: Shape, ex) -> Shape:
        kind = node.spec.shortcut
        if kind == "auto":
            kind = "identity" if shape == target or node.spec.merge != "add" else "projection"
            node.spec = node.spec.model_copy(update={"shortcut": kind})
        if kind == "identity":
            return shape
        stride = _stride_between(node, shape, target)
        if kind == "projection":
            return ex.make_child(node, "shortcut", "conv",
                                 {"filters": target[-1], "kernel": 1, "stride": stride,
                                  "activation": "none", "padding": "valid", "order": "post"},
                                 "shortcut", shape)
        if target[-1] < shape[-1]:
            raise node.error(f"a zero-padded shortcut cannot shrink {shape[-1]} channels to "
                             f"{target[-1]}", "shortcut")
        if stride > 1:
            pool = ({"size": stride, "stride": stride} if node.spec.downsample == "avg_pool"
                    else {"size": 1, "stride": stride})
            kind_name = "avg_pool" if node.spec.downsample == "avg_pool" else "max_pool"
            shape = ex.make_child(node, "shortcut", kind_name, pool, "shortcut_pool", shape)
        if target[-1] > shape[-1]:
            shape = ex.make_child(node, "shortcut", "channel_pad", {"channels": target[-1]},
                                  "shortcut_pad", shape)
        return shape

    def depth(self, node, depth_of):
        shortcut = node.children.get("shortcut", [])
        return (depth_of(node.children.get("pre", [])) +
                max(depth_of(node.children.get("body", [])), depth_of(shortcut)) +
                depth_of(node.children.get("after", [])))

    def receptive_field(self, node, field, chain):
        pre = chain(node.children.get("pre", []), field)
        source = pre if node.spec.shortcut_from == "pre" else field
        merged = widest(chain(node.children.get("body", []), pre),
                        chain(node.children.get("shortcut", []), source))
        return chain(node.children.get("after", []), merged)

    def build(self, node, x, ctx):
        inputs = x
        x = ctx.build_all(node.children.get("pre", []), inputs)
        source = x if node.spec.shortcut_from == "pre" else inputs
        # The shortcut is built first, so weights come in the order keras.applications uses.
        shortcut = ctx.build_all(node.children.get("shortcut", []), source)
        body = ctx.build_all(node.children.get("body", []), x)
        # Shortcut first: DenseNet concatenates [x, new features] (keras.applications channel order).
        merged = ctx.merge(node.spec.merge, [shortcut, body], f"{node.path}.{node.spec.merge}")
        return ctx.build_all(node.children.get("after", []), merged)


@register_block("branch")
class Branch(Block):
    """``branch: {paths: [[...], [...]], merge: concat}``: an Inception-style module."""

    Spec = BranchSpec
    block_fields = ("paths",)

    def infer(self, node, shape, ex):
        paths = node.raw.pop("paths", None)
        if not isinstance(paths, list) or len(paths) < 2:
            raise node.error("a branch needs 'paths': a list of at least two block lists", "paths")
        shapes = [ex.expand_field(node, "paths", shape, raw=path, group=f"path{index + 1}",
                                  doc_path=f"{node.doc_path}.branch.paths[{index}]")
                  for index, path in enumerate(paths)]
        return merge_shapes(node, shapes, node.spec.merge, [f"path{i + 1}" for i in range(len(shapes))])

    def depth(self, node, depth_of):
        return max((depth_of([path]) for path in node.children.get("paths", [])), default=0)

    def receptive_field(self, node, field, chain):
        return widest(*(chain([path], field) for path in node.children.get("paths", [])))

    def build(self, node, x, ctx):
        outputs = [ctx.build_all([path], x) for path in node.children.get("paths", [])]
        return ctx.merge(node.spec.merge, outputs, f"{node.path}.{node.spec.merge}")


def widest(*fields):
    """The larger receptive field of parallel paths (undefined if any path's is)."""
    if any(f is None for f in fields) or not fields:
        return None
    return max(f[0] for f in fields), max(f[1] for f in fields)


def _shortcut_kind(value: str, node: Node) -> str:
    kinds = ("auto", "identity", "projection", "zero_pad")
    if value not in kinds:
        from blockbuilder.errors import did_you_mean

        raise node.error(f"expected one of {', '.join(kinds)} or a list of blocks, got '{value}'"
                         f"{did_you_mean(value, kinds)}", "shortcut")
    return value


def _stride_between(node: Node, shape: Shape, target: Shape) -> int:
    if len(shape) != 3 or len(target) != 3:
        raise node.error(f"cannot match shortcut shape {list(shape)} to body shape {list(target)}",
                         "shortcut")
    stride = -(-shape[0] // target[0])
    if -(-shape[0] // stride) != target[0] or -(-shape[1] // stride) != target[1]:
        raise node.error(f"the body turns {shape[0]}x{shape[1]} into {target[0]}x{target[1]}, "
                         "which no shortcut stride matches", "shortcut")
    return stride


def merge_shapes(node: Node, shapes: list[Shape], merge: str, names) -> Shape:
    """The shape after merging; an error naming both shapes when they do not fit."""
    first = shapes[0]
    if merge == "multiply":
        return _gate_shape(node, shapes, names)
    for name, shape in zip(names[1:], shapes[1:]):
        if merge == "concat":
            if shape[:-1] != first[:-1]:
                raise node.error(f"cannot concat {names[0]} {list(first)} with {name} {list(shape)}: "
                                 "spatial sizes differ")
        elif shape != first:
            raise node.error(f"cannot {merge} {names[0]} {list(first)} and {name} {list(shape)}: "
                             "shapes differ")
    if merge == "concat":
        return (*first[:-1], sum(s[-1] for s in shapes))
    return first


def _gate_shape(node: Node, shapes: list[Shape], names) -> Shape:
    """``multiply`` broadcasts: a [1, 1, C] gate may scale an [H, W, C] tensor (squeeze-and-excitation)."""
    first, second = shapes
    if len(first) != len(second) or any(a != b and 1 not in (a, b) for a, b in zip(first, second)):
        raise node.error(f"cannot multiply {names[0]} {list(first)} and {names[1]} {list(second)}: "
                         "shapes do not broadcast")
    return tuple(max(a, b) for a, b in zip(first, second))
