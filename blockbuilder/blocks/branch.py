"""``branch``: parallel paths, merged (an Inception module)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

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
    register_block,
)

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext
    from blockbuilder.language.expand import Expansion

MAX_PATHS = 64


class BranchSpec(BlockSpec):
    """``branch: {paths: [[...], [...]], merge: concat}``."""

    merge: Literal["concat", "add", "mean", "multiply"] = "concat"


@register_block("branch")
class Branch(Block[BranchSpec]):
    """Each path (``path1``, ``path2`` ...) sees the same input; their outputs are merged."""

    Spec = BranchSpec
    block_fields = ("paths",)
    colour = "branch"

    def layer_names(self, spec: BranchSpec) -> tuple[str, ...]:
        return (spec.merge,)

    def expand(self, spec: BranchSpec, fields: Mapping[str, Any], shape: Shape,
               ex: Expansion) -> tuple[Children, Shape]:
        paths = fields.get("paths")
        if not isinstance(paths, list) or not 2 <= len(paths) <= MAX_PATHS:
            raise ex.site.error(f"a branch needs 'paths': a list of 2 to {MAX_PATHS} block lists", "paths")
        nodes: list[Node[Any]] = []
        shapes = []
        for index, path in enumerate(paths):
            made, out = ex.chain(path, shape, "paths", group=f"path{index + 1}",
                                 doc_path=f"{ex.site.doc_path}.branch.paths[{index}]")
            nodes.extend(made)
            shapes.append(out)
        out = merge_shapes(ex.site, shapes, spec.merge, [f"path{i + 1}" for i in range(len(shapes))])
        return {"paths": tuple(nodes)}, out

    def depth(self, node: Node[BranchSpec], depth_of: DepthOf) -> int:
        return max((depth_of((path,)) for path in node.group("paths")), default=0)

    def receptive_field(self, node: Node[BranchSpec], field: Field, chain: Chain) -> Field:
        return widest(*(chain((path,), field) for path in node.group("paths")))

    def build(self, node: Node[BranchSpec], x: Any, ctx: BuildContext) -> Any:
        outputs = [ctx.build_all((path,), x) for path in node.group("paths")]
        return merge_layer(node.spec.merge, outputs, f"{node.path}.{node.spec.merge}", ctx)

    def describe(self, node: Node[BranchSpec]) -> str:
        return f"branch: {len(node.group('paths'))} paths, {node.spec.merge}"
