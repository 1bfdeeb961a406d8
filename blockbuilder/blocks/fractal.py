"""``fractal``: FractalNet's expansion rule with mean joins and drop-path (Larsson et al. 2017).

The ``body`` is the unit f1 (for FractalNet conv3x3 -> dropout -> BN -> ReLU), expanded into the
fractal of ``columns`` columns,

    f_1(z) = body(z),   f_{C+1}(z) = join(f_C(f_C(z)), body(z)),

with the joins taken flat as in the paper: column c (0 = deepest) applies ``body`` every 2^c rows
of the 2^(C-1) rows, and wherever two or more columns reach the same row they are joined by a
``FractalJoin`` (element-wise mean of the inputs drop-path keeps). One ``DropPathSampler`` per model
is shared by every fractal block, so global drop-path picks one column for the whole network.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field as Bounded

from blockbuilder.blocks.merge import merge_shapes
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

MAX_COLUMNS = 8
_SAMPLERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


class FractalSpec(BlockSpec):
    """``fractal: {columns: 3, local_drop: 0.15, global_ratio: 0.5, body: [...]}``."""

    columns: Annotated[int, Bounded(gt=0, le=MAX_COLUMNS)]
    local_drop: Annotated[float, Bounded(ge=0, lt=1)] = 0.15
    global_ratio: Annotated[float, Bounded(ge=0, le=1)] = 0.5
    seed: int | None = None


def fractal_rows(columns: int) -> list[list[int]]:
    """For each of the 2^(C-1) rows, the columns that apply the unit there (column 0 every row)."""
    return [[col for col in range(columns) if (row + 1) % (1 << col) == 0]
            for row in range(1 << (columns - 1))]


@register_block("fractal")
class Fractal(Block[FractalSpec]):
    """A FractalNet block: ``columns`` columns of the ``body`` unit, mean joins with drop-path."""

    Spec = FractalSpec
    block_fields = ("body",)
    scalar_key = "columns"
    colour = "fractal"

    def layer_names(self, spec: FractalSpec) -> tuple[str, ...]:
        return ("drop_path", *(f"join{row + 1}" for row in range(1 << (spec.columns - 1))))

    def expand(self, spec: FractalSpec, fields: Mapping[str, Any], shape: Shape,
               ex: Expansion) -> tuple[Children, Shape]:
        body = fields.get("body")
        if body is None:
            raise ex.site.error("a fractal needs a 'body' (the unit f1, e.g. a conv)", "body")
        shapes = [shape] * spec.columns
        units: list[Node[Any]] = []
        for row, active in enumerate(fractal_rows(spec.columns)):
            for col in active:
                made, shapes[col] = ex.chain(body, shapes[col], "body", group=f"col{col + 1}_row{row + 1}")
                units.extend(made)
            if len(active) > 1:
                joined = merge_shapes(ex.site, [shapes[c] for c in active], "mean",
                                      [f"column {c + 1}" for c in active])
                for col in active:
                    shapes[col] = joined
        return {"body": tuple(units)}, shapes[0]

    def depth(self, node: Node[FractalSpec], depth_of: DepthOf) -> int:
        return (1 << (node.spec.columns - 1)) * depth_of(node.group("body")[:1])

    def receptive_field(self, node: Node[FractalSpec], field: Field, chain: Chain) -> Field:
        # The deepest column (the first unit of every row) sees the widest field.
        units, deepest = list(node.group("body")), []
        for active in fractal_rows(node.spec.columns):
            deepest.append(units[0])
            units = units[len(active):]
        return chain(tuple(deepest), field)

    def build(self, node: Node[FractalSpec], x: Any, ctx: BuildContext) -> Any:
        from blockbuilder.compiler.drop_path import DropPathSampler, FractalJoin

        spec = node.spec
        if ctx not in _SAMPLERS:
            _SAMPLERS[ctx] = DropPathSampler(spec.global_ratio, seed=spec.seed, name=f"{node.path}.drop_path")(x)
        control = _SAMPLERS[ctx]
        units = iter(node.group("body"))
        tensors = [x] * spec.columns
        for row, active in enumerate(fractal_rows(spec.columns)):
            for col in active:
                tensors[col] = ctx.build_all((next(units),), tensors[col])
            if len(active) > 1:
                seed = None if spec.seed is None else spec.seed + row + 1
                joined = FractalJoin(spec.columns, active, spec.local_drop, seed=seed,
                                     name=f"{node.path}.join{row + 1}")([*(tensors[c] for c in active), control])
                for col in active:
                    tensors[col] = joined
        return tensors[0]
