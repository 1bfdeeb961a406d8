"""The zoo, tested from ``architectures/``: every file is a test case, every number is in one table.

``architectures/expected.csv`` holds the reference figures of ../shared/REFERENCES.md (an empty cell
where none is published): total and trainable parameters must match to the digit, depth by the
weight-layer rule, MACs within 1 %: from the specs for every file, and from the built model for every
file that is no variant of another (``BASES``). Each model is built once per session, its weights
undrawn, and only its figures are kept.
"""

from __future__ import annotations

import csv
import functools
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

import blockbuilder
from blockbuilder.language.resolve import zoo_dir
from blockbuilder.report.summary import estimate

ZOO = zoo_dir()
FILES = sorted(p.stem for p in ZOO.glob("*.yaml"))
MACS_TOLERANCE = 0.01
SMALL_INPUT = 64  # forward passes and .keras round trips only where they are cheap
# Where a network's name counts layers differently from the weight-layer rule. FractalNet's "20"
# counts its convolutions (5 * 2^(C-1)); the rule also counts the FC classifier on the path.
DEPTH_RULE_OFFSET = {"fractalnet20": 1}
# keras.applications constructors the zoo must match weight by weight (shapes, in order).
KERAS_APPLICATIONS = {
    "vgg16": "VGG16",
    "vgg19": "VGG19",
    "resnet50": "ResNet50",
    "resnet101": "ResNet101",
    "resnet152": "ResNet152",
    "resnet50v2": "ResNet50V2",
    "densenet121": "DenseNet121",
    "densenet169": "DenseNet169",
    "densenet201": "DenseNet201",
    "inception_v3": "InceptionV3",
}


def _number(text: str) -> int | float | None:
    if not text.strip():
        return None
    value = float(text)
    return int(value) if value.is_integer() and "e" not in text else value


def _expected() -> dict[str, dict[str, int | float | None]]:
    with open(ZOO / "expected.csv", newline="") as handle:
        return {row["name"]: {k: _number(v) for k, v in row.items() if k != "name"}
                for row in csv.DictReader(handle)}


EXPECTED = _expected()


def _extends(name: str) -> bool:
    return "extends" in (yaml.safe_load((ZOO / f"{name}.yaml").read_text()) or {})


# A variant (``extends:``) is its base with other numbers: every file's figures are checked from the specs
# (test_file_validates_with_the_reference_figures), and built only for the files that are no variant (and
# for the variants keras.applications has, whose weight shapes are compared): that the built model counts
# what the specs count is a property of the block types, each of which the bases build.
BASES = [n for n in FILES if not _extends(n)]


def built(names: list[str]) -> list[object]:
    """``names`` as parameters whose tests go to one worker each (``pytest -n``), so that :func:`figures`
    builds each network once, not once on each worker."""
    return [pytest.param(name, marks=pytest.mark.xdist_group(f"zoo-{name}")) for name in names]


@functools.cache
def figures(name: str) -> dict:
    """Build ``name`` once, its weights undrawn (figures read shapes only); keep its figures, not the model."""
    import keras

    from blockbuilder.transfer import build

    arch = blockbuilder.load(name)
    model, _ = build(arch, shapes_only=True)
    summary = blockbuilder.summarize(arch, model)
    result = {
        "total": summary.params_total,
        "trainable": summary.params_trainable,
        "depth": summary.depth,
        "macs": summary.macs,
        "count_params": model.count_params(),
        "estimate": estimate(arch),
        "weight_shapes": [tuple(w.shape) for w in model.weights],
        "custom_layers": sorted({type(layer).__name__ for layer in model.layers
                                 if type(layer).__module__.startswith("blockbuilder")}),
    }
    del model
    keras.backend.clear_session()
    return result


def test_every_file_has_a_row_and_every_row_a_file():
    assert sorted(EXPECTED) == FILES


@pytest.mark.parametrize("name", FILES)
def test_file_validates_with_the_reference_figures(name):
    arch = blockbuilder.load(name)
    params, macs = estimate(arch)
    expected = EXPECTED[name]
    if expected["total"] is not None:
        assert params == expected["total"]
    if expected["depth"] is not None:
        assert arch.depth == expected["depth"] + DEPTH_RULE_OFFSET.get(name, 0)
    if expected["macs"] is not None:
        assert macs == pytest.approx(expected["macs"], rel=MACS_TOLERANCE)
    assert macs > 0
    assert arch.meta.get("dataset") and arch.meta.get("source"), "meta needs dataset and source"
    assert "accuracy" in arch.meta


@pytest.mark.parametrize("name", built(BASES))
def test_params_depth_and_macs_match_the_reference(name):
    found, expected = figures(name), EXPECTED[name]
    if expected["total"] is not None:
        assert found["total"] == expected["total"]
    assert found["trainable"] == expected["trainable"]
    if expected["depth"] is not None:
        assert found["depth"] == expected["depth"] + DEPTH_RULE_OFFSET.get(name, 0)
    if expected["macs"] is not None:
        assert found["macs"] == pytest.approx(expected["macs"], rel=MACS_TOLERANCE)


@pytest.mark.parametrize("name", built(BASES))
def test_estimate_from_specs_equals_keras_count(name):
    found = figures(name)
    assert found["estimate"][0] == found["count_params"] == found["total"]
    assert found["estimate"][1] == found["macs"]


@pytest.mark.parametrize("name", built(sorted(KERAS_APPLICATIONS)))
def test_weight_shapes_match_keras_applications(name):
    """Same weight shapes in the same order: published keras.applications weights load."""
    import keras

    constructor = getattr(keras.applications, KERAS_APPLICATIONS[name])
    with keras.StatelessScope(initialize_variables=False):  # shapes only, as figures() builds ours
        reference = [tuple(w.shape) for w in constructor(weights=None).weights]
    keras.backend.clear_session()
    assert figures(name)["weight_shapes"] == reference


SMALL = [n for n in FILES if max(blockbuilder.load(n).input_shape[:2]) <= SMALL_INPUT]


@pytest.mark.parametrize("name", SMALL)
def test_forward_pass_on_one_image(name):
    arch = blockbuilder.load(name)
    model = blockbuilder.build(arch)
    image = np.random.default_rng(0).random((1, *arch.input_shape), dtype=np.float32)
    probabilities = np.asarray(model(image, training=False))
    assert probabilities.shape == (1, arch.classes)
    assert np.all(np.isfinite(probabilities))
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-4)


def _uses_custom_layers(node) -> bool:
    """Whether a block builds one of blockbuilder's own Keras layers (found without Keras)."""
    spec = node.spec
    own = node.type in CUSTOM_LAYER_BLOCKS or getattr(spec, "function", None) == "scaled_tanh" or \
        getattr(spec, "activation", None) == "scaled_tanh"
    return own or any(_uses_custom_layers(child) for child in node.all_children())


CUSTOM_LAYER_BLOCKS = {"channel_pad", "fractal"}


# A variant (``extends:``) uses the same layer types as its base: one round trip per family.
CUSTOM = [n for n in SMALL if _uses_custom_layers(blockbuilder.load(n).root)]
ROUND_TRIP = [n for n in CUSTOM if not _extends(n)]


def test_custom_layer_files_are_found():
    assert {"harley_mnist", "resnet20_cifar", "pyramidnet110_a48", "fractalnet20"} <= set(CUSTOM)


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_keras_round_trip_for_custom_layers(name, tmp_path: Path):
    """Files whose models use blockbuilder's own layers save and load as ``.keras``."""
    arch = blockbuilder.load(name)
    model = blockbuilder.build(arch)
    custom = {type(layer).__name__ for layer in model.layers
              if type(layer).__module__.startswith("blockbuilder")}
    assert custom
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = blockbuilder.load_model(str(path))
    image = np.random.default_rng(1).random((2, *arch.input_shape), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(loaded(image, training=False)),
                               np.asarray(model(image, training=False)), rtol=1e-5, atol=1e-6)
    assert {type(layer).__name__ for layer in loaded.layers} >= custom


def test_families_are_parameterised_by_numbers():
    """ResNet-44, WRN-16-8, PyramidNet alpha=84, DenseNet-BC-250 k=24: numbers only."""
    resnet44 = blockbuilder.load("resnet20_cifar", ["variables.n=7"])
    assert resnet44.depth == 44
    wrn = blockbuilder.load("wrn28_10", ["variables.depth=16", "variables.k=8"])
    assert wrn.output_shape == (10,) and estimate(wrn)[0] > 0
    pyramid = blockbuilder.load("pyramidnet110_a48", ["variables.alpha=84"])
    assert pyramid.root.all_children()[-4].output_shape == (8, 8, 16 + 84)
    densenet = blockbuilder.load("densenet_bc100_k12", ["variables.depth=250", "variables.k=24"])
    assert densenet.depth == 250
    cifar100 = blockbuilder.load("resnet56_cifar", ["classes=100"])
    assert cifar100.output_shape == (100,)
    assert math.isclose(estimate(blockbuilder.load("resnet56_cifar"))[0] + 64 * 90 + 90,
                        estimate(cifar100)[0])
