"""``repeat``: a body expanded ``times`` times, with the index (``$i``) counting from 0; ``times: 0`` is no
block at all (its input passes on, as through ``identity``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field as Bounded

from blockbuilder.blocks.registry import Block, BlockSpec, Chain, Children, Field, Node, Shape, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext
    from blockbuilder.language.expand import Expansion

MAX_REPEAT = 10_000


class RepeatSpec(BlockSpec):
    """``repeat: {times: 3, body: [...]}``; the index is ``i`` unless ``index`` renames it."""

    times: Annotated[int, Bounded(ge=0, le=MAX_REPEAT)]
    index: Annotated[str, Bounded(pattern=r"^[A-Za-z_]\w*$")] = "i"


@register_block("repeat")
class Repeat(Block[RepeatSpec]):
    """A one-block body gives children ``bottleneck1``, ``bottleneck2`` ...; a longer one ``unit1`` ...."""

    Spec = RepeatSpec
    block_fields = ("body",)
    scalar_key = "times"
    chains_body = True
    colour = "combinator"

    def expand(self, spec: RepeatSpec, fields: Mapping[str, Any], shape: Shape,
               ex: Expansion) -> tuple[Children, Shape]:
        body = fields.get("body")
        if body is None:
            raise ex.site.error("a repeat needs a 'body'", "body")
        ex.reserve(spec.times, "times")
        single = not isinstance(body, list) or len(body) == 1
        children: list[Node[Any]] = []
        for index in range(spec.times):
            nodes, shape = ex.chain(body, shape, "body", bindings={spec.index: index},
                                    group=None if single else f"unit{index + 1}")
            children.extend(nodes)
        return {"body": tuple(children)}, shape

    def receptive_field(self, node: Node[RepeatSpec], field: Field, chain: Chain) -> Field:
        return chain(node.group("body"), field)

    def build(self, node: Node[RepeatSpec], x: Any, ctx: BuildContext) -> Any:
        return ctx.build_all(node.group("body"), x)

    def describe(self, node: Node[RepeatSpec]) -> str:
        return f"repeat ×{node.spec.times}"
