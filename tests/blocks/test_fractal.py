"""FractalNet's drop-path: every column at inference, one column under global drop-path, never an
empty join under local drop-path (Larsson et al. 2017)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import blockbuilder
from blockbuilder.blocks.fractal import fractal_rows
from blockbuilder.compiler.drop_path import DropPathSampler, FractalJoin

SMALL_FRACTAL = """
name: tiny_fractal
input: [8, 8, 3]
classes: 4
variables: {local_drop: 0.15, global_ratio: 0.5}
network:
  - fractal:
      columns: 3
      local_drop: $local_drop
      global_ratio: $global_ratio
      seed: 7
      body:
        - conv: {filters: 4, kernel: 3}
        - batchnorm: {center: false, scale: false}
        - activation: relu
  - max_pool: 2
  - fractal:
      columns: 3
      local_drop: $local_drop
      global_ratio: $global_ratio
      body: [conv: {filters: 4, kernel: 3, activation: relu}]
  - global_avg_pool
  - dense: {units: $classes, activation: softmax}
"""


def _model(**variables):
    overrides = [f"variables.{k}={v}" for k, v in variables.items()]
    return blockbuilder.build(blockbuilder.loads(SMALL_FRACTAL, overrides))


def _joins_probe(model):
    """A model giving, per join, its output and its inputs (without the drop-path control)."""
    joins = [layer for layer in model.layers if isinstance(layer, FractalJoin)]
    outputs = [t for join in joins for t in (join.output, *join.input[:-1])]
    return joins, keras.Model(model.inputs, outputs)


def _per_join(joins, values):
    values, found = list(values), []
    for join in joins:
        count = len(join.column_ids)
        found.append((np.asarray(values[0]), [np.asarray(v) for v in values[1:1 + count]]))
        values = values[1 + count:]
    return found


IMAGES = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)


def test_expansion_rule_gives_columns_of_1_2_4_units_and_depth_20_for_fractalnet20():
    assert fractal_rows(3) == [[0], [0, 1], [0], [0, 1, 2]]
    arch = blockbuilder.load("fractalnet20")
    block = arch.root.all_children()[0].all_children()[0]
    assert block.type == "fractal" and len(block.children["body"]) == 4 + 2 + 1
    assert blockbuilder.load("fractalnet20", ["variables.columns=4"]).depth == 5 * 8 + 1


def test_inference_is_deterministic_and_joins_average_every_column():
    model = _model()
    first = np.asarray(model(IMAGES, training=False))
    np.testing.assert_array_equal(first, np.asarray(model(IMAGES, training=False)))
    joins, probe = _joins_probe(model)
    assert [len(j.column_ids) for j in joins] == [2, 3, 2, 3]
    for output, inputs in _per_join(joins, probe(IMAGES, training=False)):
        np.testing.assert_allclose(output, np.mean(inputs, axis=0), rtol=1e-5, atol=1e-6)


def test_global_drop_path_keeps_exactly_one_column_for_the_whole_network():
    model = _model(global_ratio=1.0, local_drop=0.0)
    joins, probe = _joins_probe(model)
    for _ in range(6):
        chosen = set()
        for join, (output, inputs) in zip(joins, _per_join(joins, probe(IMAGES, training=True))):
            equal = [k for k, x in enumerate(inputs) if np.allclose(output, x, atol=1e-6)]
            differ = any(not np.allclose(inputs[0], x) for x in inputs[1:])
            if len(equal) == 1 and differ:
                chosen.add(join.column_ids[equal[0]])
            else:  # the chosen column does not reach this join: its output is not used
                np.testing.assert_allclose(output, np.mean(inputs, axis=0), rtol=1e-5, atol=1e-6)
        assert len(chosen) == 1
    # the column is drawn per batch: over many batches, several columns are picked
    control = DropPathSampler(1.0, seed=3)
    picks = {int(np.floor(float(control(IMAGES, training=True)[1]) * 3)) for _ in range(40)}
    assert picks == {0, 1, 2}


def test_global_join_mask_is_one_hot_on_the_chosen_column():
    join = FractalJoin(3, [0, 1, 2], drop_rate=0.5, seed=1)
    for u, column in ((0.1, 0), (0.5, 1), (0.9, 2)):
        mask = np.asarray(join.keep_mask(keras.ops.convert_to_tensor([1.0, u])))
        np.testing.assert_array_equal(mask, np.eye(3)[column])


@pytest.mark.parametrize("drop_rate", [0.15, 0.9, 0.999])
def test_local_drop_path_never_drops_every_input_of_a_join(drop_rate):
    join = FractalJoin(3, [0, 1, 2], drop_rate=drop_rate, seed=0)
    local = keras.ops.convert_to_tensor([0.0, 0.0])
    masks = np.array([np.asarray(join.keep_mask(local)) for _ in range(300)])
    assert masks.sum(axis=1).min() >= 1
    assert set(np.unique(masks)) <= {0.0, 1.0}
    if drop_rate == 0.15:
        assert 0.75 < masks.mean() < 0.95  # inputs are kept with probability about 1 - p
    xs = [keras.ops.full((1, 2), float(v)) for v in (1, 2, 4)]
    value = float(np.asarray(join([*xs, local], training=True))[0, 0])
    assert value in {1, 2, 4, 1.5, 2.5, 3, 7 / 3}


def test_sampler_mixes_global_and_local_batches_half_and_half():
    sampler = DropPathSampler(0.5, seed=11)
    draws = np.array([np.asarray(sampler(IMAGES, training=True)) for _ in range(400)])
    assert 0.4 < draws[:, 0].mean() < 0.6
    np.testing.assert_array_equal(np.asarray(sampler(IMAGES, training=False)), [0.0, 0.0])


def test_fractal_model_trains_one_step():
    model = _model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(IMAGES, np.array([0, 1]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
