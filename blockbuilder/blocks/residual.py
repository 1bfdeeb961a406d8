"""``residual``: ``merge(shortcut(x'), scale * drop_path(body(x')))`` then ``after``, where ``x' = pre(x)``.

A DenseNet layer is a residual that concatenates; squeeze-and-excitation one that multiplies;
Inception-ResNet's units add a ``scale``d body (``x + 0.17 * f(x)``); ``drop_path`` is stochastic depth.

A functional Keras model orders its layers (and so its weights, which published weight files are
loaded by) by their distance to the output, ties broken by the order of each merge's inputs, not by
the order the layers were made in: ``order`` says which input the merge takes first. keras.applications
writes ``Add()([shortcut, x])`` in ResNet and DenseNet (``shortcut_first``), ``add([x, residual])`` in
Xception (``body_first``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field as Bounded

from blockbuilder.blocks.geometry import widest
from blockbuilder.blocks.merge import merge_layer, merge_shapes
from blockbuilder.blocks.registry import (
    Block,
    BlockSpec,
    Chain,
    Children,
    DepthOf,
    Field,
    Node,
    Shape,
    Site,
    register_block,
)

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext
    from blockbuilder.language.expand import Expansion

ShortcutKind = Literal["auto", "identity", "projection", "zero_pad", "blocks"]
#: Names of the blocks a residual adds to its shortcut itself.
SHORTCUT_NAMES = ("shortcut", "shortcut_pool", "shortcut_pad")
#: Names of the layers a residual puts on its body's output itself.
BODY_NAMES = ("scale", "drop_path")


class ResidualSpec(BlockSpec):
    """``shortcut`` is a kind, or ``blocks`` when the shortcut is a list of blocks."""

    shortcut: ShortcutKind = "auto"
    shortcut_from: Literal["input", "pre"] = "input"
    merge: Literal["add", "concat", "multiply"] = "add"
    downsample: Literal["subsample", "avg_pool"] = "subsample"
    order: Literal["shortcut_first", "body_first"] = "shortcut_first"
    scale: Annotated[float, Bounded(allow_inf_nan=False)] | None = None
    drop_path: Annotated[float, Bounded(ge=0, lt=1)] = 0.0
    seed: int | None = None


@register_block("residual")
class Residual(Block[ResidualSpec]):
    """A residual unit: ``shortcut: auto`` is the identity, or a 1x1 projection when shapes differ."""

    Spec = ResidualSpec
    block_fields = ("pre", "body", "shortcut", "after")
    colour = "residual"

    def holds_blocks(self, key: str, value: Any) -> bool:
        return key in self.block_fields and not (key == "shortcut" and isinstance(value, str))

    def normalize(self, args: dict[str, Any], fields: dict[str, Any],
                  site: Site) -> tuple[dict[str, Any], dict[str, Any]]:
        """``after: relu`` is an activation; a shortcut written as blocks is the kind ``blocks``."""
        fields = dict(fields)
        if isinstance(fields.get("after"), str):
            fields["after"] = [{"activation": fields["after"]}]
        if "shortcut" in fields:
            args = {**args, "shortcut": "blocks"}
        return args, fields

    def layer_names(self, spec: ResidualSpec) -> tuple[str, ...]:
        return (spec.merge, *SHORTCUT_NAMES, *BODY_NAMES)

    def expand(self, spec: ResidualSpec, fields: Mapping[str, Any], shape: Shape,
               ex: Expansion) -> tuple[Children, Shape]:
        if "body" not in fields:
            raise ex.site.error("a residual needs a 'body'", "body")
        for key, used in (("scale", spec.scale is not None), ("drop_path", spec.drop_path > 0)):
            if used and spec.merge != "add":
                raise ex.site.error(f"{key} acts on the body of an added residual, but this one's merge is "
                                    f"'{spec.merge}': write merge: add, or leave {key} out", key)
        pre, pre_shape = ex.chain(fields.get("pre", []), shape, "pre")
        body, body_shape = ex.chain(fields["body"], pre_shape, "body")
        source = pre_shape if spec.shortcut_from == "pre" else shape
        if spec.shortcut == "blocks":
            shortcut, short_shape = ex.chain(fields.get("shortcut", []), source, "shortcut")
        else:
            shortcut = self._shortcut(spec, source, body_shape, ex)
            short_shape = shortcut[-1].output_shape if shortcut else source
        merged = merge_shapes(ex.site, [body_shape, short_shape], spec.merge, ("body", "shortcut"))
        after, out = ex.chain(fields.get("after", []), merged, "after")
        return {"pre": pre, "body": body, "shortcut": shortcut, "after": after}, out

    def _shortcut(self, spec: ResidualSpec, shape: Shape, target: Shape, ex: Expansion) -> tuple[Node[Any], ...]:
        """The blocks a shortcut kind stands for (none for the identity)."""
        kind = spec.shortcut
        if kind == "auto":
            kind = "identity" if shape == target or spec.merge != "add" else "projection"
        if kind == "identity":
            return ()
        stride = _stride_between(ex.site, shape, target)
        if kind == "projection":
            return (ex.child("conv", {"filters": target[-1], "kernel": 1, "stride": stride, "activation": "none",
                                      "padding": "valid", "order": "post"}, "shortcut", shape, "shortcut"),)
        if target[-1] < shape[-1]:
            raise ex.site.error(f"a zero-padded shortcut cannot shrink {shape[-1]} channels to {target[-1]}",
                                "shortcut")
        made: list[Node[Any]] = []
        if stride > 1:
            pooled = spec.downsample == "avg_pool"
            window = {"size": stride, "stride": stride} if pooled else {"size": 1, "stride": stride}
            made.append(ex.child("avg_pool" if pooled else "max_pool", window, "shortcut_pool", shape, "shortcut"))
            shape = made[-1].output_shape
        if target[-1] > shape[-1]:
            made.append(ex.child("channel_pad", {"channels": target[-1]}, "shortcut_pad", shape, "shortcut"))
        return tuple(made)

    def depth(self, node: Node[ResidualSpec], depth_of: DepthOf) -> int:
        return (depth_of(node.group("pre")) + max(depth_of(node.group("body")), depth_of(node.group("shortcut")))
                + depth_of(node.group("after")))

    def receptive_field(self, node: Node[ResidualSpec], field: Field, chain: Chain) -> Field:
        pre = chain(node.group("pre"), field)
        source = pre if node.spec.shortcut_from == "pre" else field
        merged = widest(chain(node.group("body"), pre), chain(node.group("shortcut"), source))
        return chain(node.group("after"), merged)

    def build(self, node: Node[ResidualSpec], x: Any, ctx: BuildContext) -> Any:
        spec, inputs = node.spec, x
        x = ctx.build_all(node.group("pre"), inputs)
        source = x if spec.shortcut_from == "pre" else inputs
        shortcut = ctx.build_all(node.group("shortcut"), source)
        body = ctx.build_all(node.group("body"), x)
        if spec.scale is not None:
            body = ctx.layers.Rescaling(spec.scale, name=f"{node.path}.scale")(body)
        if spec.drop_path > 0:
            from blockbuilder.compiler.drop_path import StochasticDepth

            body = StochasticDepth(spec.drop_path, seed=spec.seed, name=f"{node.path}.drop_path")(body)
        # The merge's input order decides the weight order (and a concat's channel order: DenseNet
        # concatenates [x, new features]).
        tensors = [shortcut, body] if spec.order == "shortcut_first" else [body, shortcut]
        merged = merge_layer(spec.merge, tensors, f"{node.path}.{spec.merge}", ctx)
        return ctx.build_all(node.group("after"), merged)

    def describe(self, node: Node[ResidualSpec]) -> str:
        spec = node.spec
        extras = [*([spec.merge] if spec.merge != "add" else []),
                  *([f"×{spec.scale:g}"] if spec.scale is not None else []),
                  *([f"drop {spec.drop_path:g}"] if spec.drop_path else [])]
        return f"residual ({', '.join(extras)})" if extras else "residual"


def _stride_between(site: Site, shape: Shape, target: Shape) -> int:
    if len(shape) != 3 or len(target) != 3:
        raise site.error(f"cannot match shortcut shape {list(shape)} to body shape {list(target)}", "shortcut")
    stride = -(-shape[0] // target[0])
    if -(-shape[0] // stride) != target[0] or -(-shape[1] // stride) != target[1]:
        raise site.error(f"the body turns {shape[0]}x{shape[1]} into {target[0]}x{target[1]}, "
                         "which no shortcut stride matches", "shortcut")
    return stride
