"""Every registered block type, tested by generation (issue 9 item 4).

For each type in the registry -- built-ins and any plugin imported before this module runs --
hypothesis draws valid arguments from the block's own spec class (its fields, their types and
bounds) and an input shape, writes the block as YAML, and checks that

* the shape rule (inferred before Keras) equals the built Keras model's output shape,
* the parameters computed from shapes equal ``model.count_params()``,
* the multiply-accumulates computed from shapes equal an independent count over the Keras layers
  (output positions × kernel size, the convention of the summary).

A new block type is covered the moment it is registered: nothing here names a type.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any

import annotated_types
import pytest
import yaml
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import blockbuilder
from blockbuilder import SpecError
from blockbuilder.blocks import block_names, get_block

SMALL = 6          # ints are drawn up to this (widths, kernels, strides, repeats)
LEAVES = [{"conv": {"filters": 3, "kernel": 1}}, {"batchnorm": None}, {"activation": "relu"}, "identity"]
COUNTED: dict[str, int] = {}


def _int(metadata: list[Any]) -> st.SearchStrategy[int]:
    low, high = 0, SMALL
    for item in metadata:
        if isinstance(item, annotated_types.Gt):
            low = max(low, int(item.gt) + 1)
        elif isinstance(item, annotated_types.Ge):
            low = max(low, int(item.ge))
        elif isinstance(item, annotated_types.Le):
            high = min(high, int(item.le))
        elif isinstance(item, annotated_types.Lt):
            high = min(high, int(item.lt) - 1)
    return st.integers(low, max(low, high))


def _float(metadata: list[Any]) -> st.SearchStrategy[float]:
    low, high, exclude_high = 0.0, 1.0, False
    for item in metadata:
        if isinstance(item, annotated_types.Gt):
            low = max(low, float(item.gt) + 1e-3)
        elif isinstance(item, annotated_types.Ge):
            low = max(low, float(item.ge))
        elif isinstance(item, annotated_types.Le):
            high = min(high, float(item.le))
        elif isinstance(item, annotated_types.Lt):
            high, exclude_high = min(high, float(item.lt)), True
    return st.floats(low, high, exclude_max=exclude_high, allow_nan=False)


def strategy_for(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    """Values of one spec field, from its type annotation and bounds."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        return strategy_for(inner, [*metadata, *extra])
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(strategy_for(arg, metadata) for arg in typing.get_args(annotation)))
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(annotation))
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]: one per channel, or a wrong count
            return st.lists(strategy_for(args[0], metadata), min_size=1, max_size=SMALL)
        return st.tuples(*(strategy_for(arg, metadata) for arg in args)).map(list)
    if annotation is type(None):
        return st.none()
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return _int(metadata)
    if annotation is float:
        return _float(metadata)
    if annotation is str:
        return st.just("i")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return spec_values(annotation)
    raise NotImplementedError(f"no strategy for {annotation!r}")


def spec_values(spec_class: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Argument mappings for a spec class: each field drawn, or left to its default."""
    parts = {}
    for name, info in spec_class.model_fields.items():
        values = strategy_for(info.annotation, list(info.metadata))
        parts[name] = values if info.is_required() else st.one_of(st.just(None), values)
    return st.fixed_dictionaries(parts).map(lambda d: {k: v for k, v in d.items() if v is not None})


def chains() -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(LEAVES), min_size=1, max_size=2)


@st.composite
def entries(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """One block entry of type ``name``, with small block lists in its block fields."""
    block = get_block(name)
    assert block is not None
    args = draw(spec_values(block.Spec))
    for index, field in enumerate(block.block_fields):
        if index and not draw(st.booleans()):
            continue
        if field == "paths":
            args[field] = draw(st.lists(chains(), min_size=2, max_size=3))
        else:
            args[field] = draw(chains())
    return {name: args}


SHAPES = st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 6))


KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")  # SeparableConv2D has the last two


def keras_macs(model: Any) -> int:
    """Output positions × kernel size for every kernel of every layer (independent of the blocks)."""
    total = 0
    for layer in model.layers:
        for kernel in (getattr(layer, name, None) for name in KERNELS):
            if kernel is not None:
                positions = math.prod(int(d) for d in layer.output.shape[1:-1])
                total += positions * math.prod(int(d) for d in kernel.shape)
    return total


@pytest.mark.parametrize("name", block_names())
def test_every_block_type_agrees_with_keras(name: str) -> None:
    @settings(max_examples=10, deadline=None, database=None,
              suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
    @given(entry=entries(name), shape=SHAPES)
    def check(entry: dict[str, Any], shape: tuple[int, int, int]) -> None:
        text = yaml.safe_dump({"input": list(shape), "network": [entry]}, sort_keys=False)
        try:
            arch = blockbuilder.loads(text)
        except SpecError:
            reject()  # arguments that do not fit this input: the shape rule refused them, as it should
        nodes = arch.root.walk()
        model = blockbuilder.build(arch)
        assert tuple(model.output.shape[1:]) == arch.output_shape, text
        assert sum(n.block.params(n) for n in nodes) == model.count_params(), text
        assert sum(n.block.macs(n) for n in nodes) == keras_macs(model), text
        COUNTED[name] = COUNTED.get(name, 0) + 1

    check()
    assert COUNTED.get(name, 0) >= 1, f"no valid example of '{name}' was generated"


def test_a_strided_one_by_one_inverted_residual_on_an_even_input_builds() -> None:
    """Found by the generated test: keras.applications' correct_pad gives -1 for a 1x1 kernel."""
    arch = blockbuilder.loads("input: [6, 6, 2]\nnetwork:\n  - inverted_residual: {filters: 3, kernel: 1, stride: 2}\n")
    model = blockbuilder.build(arch)
    assert tuple(model.output.shape[1:]) == arch.output_shape == (3, 3, 3)
