"""The torchvision families of the zoo, one YAML file each (variants by ``extends:``), equal torchvision.

The figures below are torchvision's, from ../shared/REFERENCES.md ("More families"): parameters of
``torchvision.models.<name>(weights=None)`` (BatchNorm statistics are buffers there, so they equal the
Keras *trainable* count) and MACs of its conv and linear layers at 224x224x3, counted with forward hooks.
torchvision's model table prints the same parameters and the MACs rounded to 0.01 G ("GFLOPS").
The MACs are given to 0.1 M, so a file's MACs, rounded the same way, must equal them: a stricter check
than the zoo's MACS_TOLERANCE (1 %, tests/zoo/test_zoo.py, which checks the same figures in expected.csv).
"""

from __future__ import annotations

import math

import pytest
import yaml

import blockbuilder
from blockbuilder.language.resolve import zoo_dir
from blockbuilder.report.summary import estimate

# zoo name -> (torchvision parameters, torchvision MACs in millions at 224x224x3)
TORCHVISION = {
    "squeezenet1_0": (1_248_424, 818.9),
    "squeezenet1_1": (1_235_496, 349.2),
    "shufflenet_v2_x0_5": (1_366_792, 40.5),
    "shufflenet_v2_x1_0": (2_278_604, 144.9),
    "shufflenet_v2_x1_5": (3_503_624, 295.8),
    "shufflenet_v2_x2_0": (7_393_996, 583.3),
    "regnet_x_400mf": (5_495_976, 413.8),
    "regnet_x_800mf": (7_259_656, 799.7),
    "regnet_x_1_6gf": (9_190_136, 1_602.8),
    "regnet_y_400mf": (4_344_144, 401.8),
    "regnet_y_800mf": (6_432_512, 833.9),
    "regnet_y_1_6gf": (11_202_430, 1_612.1),
}
# A family member is its base file and numbers: only these keys besides the base's (SqueezeNet 1.1
# is not one: it moves the pools, so it replaces the `features` block).
VARIANT_KEYS = {"extends", "name", "description", "variables", "meta"}
VARIANTS = ["shufflenet_v2_x0_5", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "regnet_x_800mf",
            "regnet_x_1_6gf", "regnet_y_800mf", "regnet_y_1_6gf"]
SMALL_INPUT = ["input=[64, 64, 3]"]  # the weights do not depend on the input size; a small one builds fast


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_macs_at_224_equal_torchvision(name):
    arch = blockbuilder.load(name)
    assert arch.input_shape == (224, 224, 3) and arch.output_shape == (1000,)
    assert round(estimate(arch)[1] / 1e6, 1) == TORCHVISION[name][1]
    assert arch.meta["source"] and arch.meta["accuracy"] and arch.meta["dataset"] == "ImageNet"


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_trainable_parameters_equal_torchvision(name):
    import keras

    arch = blockbuilder.load(name, SMALL_INPUT)
    model = blockbuilder.build(arch)
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert trainable == TORCHVISION[name][0]
    assert model.count_params() == estimate(arch)[0] == estimate(blockbuilder.load(name))[0]
    del model
    keras.backend.clear_session()


@pytest.mark.parametrize("name", VARIANTS)
def test_a_family_member_is_numbers(name):
    document = yaml.safe_load((zoo_dir() / f"{name}.yaml").read_text())
    assert set(document) <= VARIANT_KEYS
    assert document["extends"].removesuffix(".yaml") in TORCHVISION


def test_regnet_y_is_regnet_x_with_squeeze_and_excitation():
    """RegNetY-400MF's widths in RegNetX's file without SE: the SE convs are the whole difference."""
    y = blockbuilder.load("regnet_y_400mf")
    x_widths = blockbuilder.load("regnet_x_400mf", ["variables.depths=[1, 3, 6, 6]",
                                                     "variables.widths=[48, 104, 208, 440]",
                                                     "variables.group_width=8"])
    se = 0
    width_in = 32  # the stem's
    for width, units in zip([48, 104, 208, 440], [1, 3, 6, 6]):
        for _ in range(units):
            squeeze = round(0.25 * width_in)
            se += width * squeeze + squeeze + squeeze * width + width
            width_in = width
    assert estimate(y)[0] - estimate(x_widths)[0] == se


def test_shufflenet_unit_keeps_the_first_half_and_shuffles():
    """torchvision: cat(x1, branch2(x2)) then a 2-group shuffle, so output channel 2j is input channel j."""
    import keras
    import numpy as np

    arch = blockbuilder.load("shufflenet_v2_x1_0", ["input=[6, 6, 16]", "network=[unit]"])
    model = blockbuilder.build(arch)
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in model.weights])
    images = rng.normal(size=(2, 6, 6, 16)).astype("float32")
    found = np.asarray(model(images, training=False))
    assert found.shape == (2, 6, 6, 16)
    np.testing.assert_array_equal(found[..., ::2], images[..., :8])
    assert not np.allclose(found[..., 1::2], images[..., 8:])  # the other half went through the path
    del model
    keras.backend.clear_session()


def test_shufflenet_down_unit_puts_the_depthwise_path_first():
    """torchvision: cat(branch1(x), branch2(x)), branch1 = depthwise 3x3/2-BN, 1x1-BN-ReLU, then the shuffle."""
    import keras
    import numpy as np

    unit = blockbuilder.build(blockbuilder.load("shufflenet_v2_x1_0", ["input=[6, 6, 16]",
                                                                       "network=[{down_unit: {c: 32}}]"]))
    branch1 = blockbuilder.build(blockbuilder.load("shufflenet_v2_x1_0", [
        "input=[6, 6, 16]", "network=[{depthwise_conv: {stride: 2}}, {conv: {filters: 16, kernel: 1}}]"]))
    rng = np.random.default_rng(0)
    unit.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in unit.weights])
    for layer in branch1.layers:
        if layer.weights:
            layer.set_weights(unit.get_layer(f"down_unit1.branch1.path1.{layer.name}").get_weights())
    images = rng.normal(size=(2, 6, 6, 16)).astype("float32")
    found = np.asarray(unit(images, training=False))
    assert found.shape == (2, 3, 3, 32)
    np.testing.assert_allclose(found[..., ::2], np.asarray(branch1(images, training=False)), rtol=1e-6)
    del unit, branch1
    keras.backend.clear_session()
