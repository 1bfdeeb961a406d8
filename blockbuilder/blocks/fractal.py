"""A block the core combinators cannot express: FractalNet's ``fractal``.

``fractal`` is a combinator: its ``body`` is the unit f1 (for FractalNet conv3x3 -> dropout -> BN ->
ReLU), expanded into the fractal of ``columns`` columns,

    f_1(z) = body(z),   f_{C+1}(z) = join(f_C(f_C(z)), body(z)),

with the joins taken flat as in the paper: column c (0 = deepest) applies ``body`` every 2^c rows
of the 2^(C-1) rows, and wherever two or more columns reach the same row they are joined by a
:class:`~blockbuilder.layers_extra.FractalJoin` (element-wise mean of the inputs drop-path keeps).
One :class:`~blockbuilder.layers_extra.DropPathSampler` per model is shared by every fractal block,
so global drop-path picks one column for the whole network.

No Keras import at module level: ``validate`` stays free of TensorFlow.
"""

from __future__ import annotations

import weakref
from typing import Any

from pydantic import Field, PositiveInt

from blockbuilder.blocks.combinators import merge_shapes
from blockbuilder.blocks.registry import Block, BlockSpec, register_block

MAX_COLUMNS = 8
_SAMPLERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


class FractalSpec(BlockSpec):
    """``fractal: {columns: 3, local_drop: 0.15, global_ratio: 0.5, body: [...]}``."""

    columns: PositiveInt = Field(le=MAX_COLUMNS)
    local_drop: float = Field(0.15, ge=0, lt=1)
    global_ratio: float = Field(0.5, ge=0, le=1)
    seed: int | None = None


def fractal_rows(columns: int) -> list[list[int]]:
    """For each of the 2^(C-1) rows, the columns that apply the unit there (column 0 every row)."""
    return [[col for col in range(columns) if (row + 1) % (1 << col) == 0]
            for row in range(1 << (columns - 1))]


@register_block("fractal")
class Fractal(Block):
    """A FractalNet block: ``columns`` columns of the ``body`` unit, mean joins with drop-path."""

    Spec = FractalSpec
    block_fields = ("body",)
    scalar_key = "columns"

    def infer(self, node, shape, ex):
        if node.raw.get("body") is None:
            raise node.error("a fractal needs a 'body' (the unit f1, e.g. a conv)", "body")
        shapes = [shape] * node.spec.columns
        for row, active in enumerate(fractal_rows(node.spec.columns)):
            for col in active:
                shapes[col] = ex.expand_field(node, "body", shapes[col],
                                              group=f"col{col + 1}_row{row + 1}")
            if len(active) > 1:
                joined = merge_shapes(node, [shapes[c] for c in active], "mean",
                                      [f"column {c + 1}" for c in active])
                for col in active:
                    shapes[col] = joined
        return shapes[0]

    def depth(self, node, depth_of):
        units = node.children.get("body", [])
        return (1 << (node.spec.columns - 1)) * depth_of(units[:1])

    def receptive_field(self, node, field, chain):
        # The deepest column (the first unit of every row) sees the widest field.
        units, deepest = node.children.get("body", []), []
        for active in fractal_rows(node.spec.columns):
            deepest.append(units[0])
            units = units[len(active):]
        return chain(deepest, field)

    def build(self, node, x, ctx):
        from blockbuilder.compiler.drop_path import DropPathSampler, FractalJoin

        spec = node.spec
        if ctx not in _SAMPLERS:
            _SAMPLERS[ctx] = DropPathSampler(spec.global_ratio, seed=spec.seed,
                                             name=f"{node.path}.drop_path")(x)
        control = _SAMPLERS[ctx]
        units = iter(node.children.get("body", []))
        tensors = [x] * spec.columns
        for row, active in enumerate(fractal_rows(spec.columns)):
            for col in active:
                tensors[col] = ctx.build_all([next(units)], tensors[col])
            if len(active) > 1:
                seed = None if spec.seed is None else spec.seed + row + 1
                joined = FractalJoin(spec.columns, active, spec.local_drop, seed=seed,
                                     name=f"{node.path}.join{row + 1}")([*(tensors[c] for c in active),
                                                                         control])
                for col in active:
                    tensors[col] = joined
        return tensors[0]
