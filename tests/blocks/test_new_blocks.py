"""MobileNetV2 and ConvNeXt-Tiny, each made of a block type that is one file, equal keras.applications.

Each network is built once per module (blockbuilder's and keras.applications'); the checks are what a
user relies on to load published weights: the same parameter counts, the same weight shapes in the
same order, and, with keras.applications' weights copied over by order, the same predictions.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import blockbuilder
from blockbuilder.report.summary import estimate
from conftest import run_process

# zoo name -> (keras.applications constructor, its arguments, total params, trainable params)
REFERENCE = {
    "mobilenet_v2": ("MobileNetV2", {"alpha": 1.0, "input_shape": (224, 224, 3)}, 3_538_984, 3_504_872),
    "convnext_tiny": ("ConvNeXtTiny", {"include_preprocessing": False}, 28_589_128, 28_589_128),
}
TOLERANCE = 1e-5


def _trainable(model) -> int:
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def _randomised(model, seed: int = 0) -> list[np.ndarray]:
    """The model's weights drawn at random, so that a misplaced layer shows in the output.

    Freshly made, norms are identities and ConvNeXt's layer scale is 1e-6 (which would hide every
    block); the statistics, scales and offsets are drawn instead, and kernels with a He scale
    (variance 2 / fan-in) so that the signal of the image still reaches the classifier 50 layers on.
    """
    rng = np.random.default_rng(seed)
    values = []
    for weight in model.weights:
        shape, path = tuple(weight.shape), weight.path
        if "moving_variance" in path:
            value = rng.uniform(0.5, 1.5, shape)
        elif any(key in path for key in ("moving_mean", "beta", "bias")):
            value = rng.normal(0.0, 0.1, shape)
        elif any(key in path for key in ("gamma", "layer_scale")):
            value = rng.uniform(0.5, 1.5, shape)
        else:  # a kernel: (kh, kw, in, out), depthwise (kh, kw, channels, 1), dense (in, out)
            fan_in = math.prod(shape[:2]) if len(shape) == 4 and shape[-1] == 1 else math.prod(shape[:-1])
            value = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
        values.append(value.astype("float32"))
    return values


def _same_outputs(ours, reference, images: np.ndarray) -> None:
    """Equal features before the classifier and equal probabilities, for images that are told apart."""
    expected = [np.asarray(t) for t in _features_and_output(reference)(images, training=False)]
    found = [np.asarray(t) for t in _features_and_output(ours)(images, training=False)]
    assert [e.shape for e in expected] == [f.shape for f in found]
    # The features depend on the image (a test on features that forgot their input could not fail).
    assert np.abs(expected[0][0] - expected[0][1]).max() > 1000 * TOLERANCE
    scale = max(1.0, float(np.abs(expected[0]).max()))
    np.testing.assert_allclose(found[0], expected[0], rtol=0, atol=TOLERANCE * scale)
    np.testing.assert_allclose(found[1], expected[1], rtol=0, atol=TOLERANCE)


def _features_and_output(model):
    """A model giving both the classifier's input and the probabilities."""
    import keras

    dense = next(layer for layer in reversed(model.layers) if type(layer).__name__ == "Dense")
    return keras.Model(model.input, [dense.input, model.output])


@pytest.fixture(scope="module", params=sorted(REFERENCE))
def networks(request):
    """(name, architecture, blockbuilder's model, keras.applications' model), built once per network."""
    import keras

    name = request.param
    constructor, kwargs, _, _ = REFERENCE[name]
    arch = blockbuilder.load(name)
    ours = blockbuilder.build(arch)
    reference = getattr(keras.applications, constructor)(weights=None, **kwargs)
    yield name, arch, ours, reference
    del ours, reference
    keras.backend.clear_session()


def test_parameters_equal_keras_applications(networks):
    name, arch, ours, reference = networks
    _, _, total, trainable = REFERENCE[name]
    summary = blockbuilder.summarize(arch, ours)
    assert (summary.params_total, summary.params_trainable) == (total, trainable)
    assert (reference.count_params(), _trainable(reference)) == (total, trainable)
    assert estimate(arch)[0] == total
    assert estimate(arch)[1] == summary.macs


def test_weight_shapes_in_keras_applications_order(networks):
    _, _, ours, reference = networks
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in reference.weights]


def test_keras_applications_weights_give_the_same_predictions(networks):
    """Weights copied by order: the same features before the classifier and the same probabilities."""
    _, arch, ours, reference = networks
    weights = _randomised(reference)
    reference.set_weights(weights)
    ours.set_weights(weights)
    images = np.random.default_rng(1).random((2, *arch.input_shape), dtype=np.float32)
    _same_outputs(ours, reference, images)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_small_input_estimate_equals_the_built_model(name, cli):
    """``validate --set input=[64,64,3]`` (no TensorFlow) reports what the built model counts."""
    import keras

    code, out, err = cli("validate", name, "--set", "input=[64,64,3]")
    assert (code, err) == (0, "")
    reported = int(re.search(r"([\d,]+) params", out).group(1).replace(",", ""))
    arch = blockbuilder.load(name, ["input=[64,64,3]"])
    model = blockbuilder.build(arch)
    assert reported == estimate(arch)[0] == model.count_params()
    assert estimate(arch)[1] == blockbuilder.summarize(arch, model).macs
    keras.backend.clear_session()


def test_mobilenet_v2_width_multiplier_and_odd_sizes_match_keras_applications():
    """alpha=0.35 on 67x67: widths rounded as keras.applications does, and its odd-size padding."""
    import keras

    arch = blockbuilder.load("mobilenet_v2", ["variables.alpha=0.35", "input=[67,67,3]"])
    ours = blockbuilder.build(arch)
    reference = keras.applications.MobileNetV2(alpha=0.35, input_shape=(67, 67, 3), weights=None)
    assert ours.count_params() == reference.count_params() == estimate(arch)[0] == 1_691_208
    weights = _randomised(reference, seed=2)
    reference.set_weights(weights)
    ours.set_weights(weights)
    images = np.random.default_rng(3).random((2, 67, 67, 3), dtype=np.float32)
    _same_outputs(ours, reference, images)
    keras.backend.clear_session()


def test_convnext_drop_path_rises_linearly_to_the_set_rate():
    arch = blockbuilder.load("convnext_tiny", ["variables.drop_path=0.1"])
    rates = [node.spec.drop_path for node in arch.root.walk() if node.type == "convnext_block"]
    assert len(rates) == 18
    np.testing.assert_allclose(rates, np.linspace(0.0, 0.1, 18), rtol=0, atol=1e-12)
    assert [node.spec.drop_path for node in blockbuilder.load("convnext_tiny").root.walk()
            if node.type == "convnext_block"] == [0.0] * 18


def test_convnext_custom_layers_save_load_and_drop_only_while_training(tmp_path):
    """LayerScale and StochasticDepth come back from a .keras file; drop path acts only in training."""
    import keras

    arch = blockbuilder.load("convnext_tiny", ["input=[32,32,3]", "classes=4", "variables.depths=[1,1,1,1]",
                                               "variables.dims=[8,16,24,32]", "variables.drop_path=0.5",
                                               "defaults.convnext_block.seed=7"])
    model = blockbuilder.build(arch)
    assert model.count_params() == estimate(arch)[0]
    custom = {type(layer).__name__ for layer in model.layers if type(layer).__module__.startswith("blockbuilder")}
    assert custom == {"LayerScale", "StochasticDepth"}
    path = tmp_path / "convnext.keras"
    model.save(path)
    loaded = blockbuilder.load_model(str(path))
    images = np.random.default_rng(4).random((8, 32, 32, 3), dtype=np.float32)
    inference = np.asarray(model(images, training=False))
    np.testing.assert_allclose(np.asarray(loaded(images, training=False)), inference, rtol=1e-6, atol=1e-7)
    assert {type(layer).__name__ for layer in loaded.layers} >= custom
    for layer in model.layers:  # a scale of 1 instead of 1e-6: let the branches matter
        if type(layer).__name__ == "LayerScale":
            layer.set_weights([np.ones_like(w) for w in layer.get_weights()])
    inference = np.asarray(model(images, training=False))
    np.testing.assert_array_equal(np.asarray(model(images, training=False)), inference)
    assert not np.allclose(np.asarray(model(images, training=True)), inference, atol=1e-6)
    keras.backend.clear_session()


def test_validating_the_new_networks_does_not_import_tensorflow():
    script = ("import sys; from blockbuilder.cli.main import main\n"
              "assert main(['validate', 'mobilenet_v2']) == 0\n"
              "assert main(['validate', 'convnext_tiny', '--set', 'variables.drop_path=0.1']) == 0\n"
              "print('heavy:', sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))")
    result = run_process("-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "mobilenet_v2: ok (input [224, 224, 3] -> output [1000], depth 53, 3,538,984 params, 300.77 M MACs)",
        "convnext_tiny: ok (input [224, 224, 3] -> output [1000], depth 59, 28,589,128 params, 4.46 G MACs)",
        "heavy: []",
    ]


@pytest.mark.parametrize("network, message", [
    ("  - global_avg_pool\n  - convnext_block\n",
     "arch.yaml:4:5: network[1]: expects an image input (height, width, channels), got shape [3]"),
    ("  - inverted_residual: {filters: 16, expansion: 0}\n",
     "arch.yaml:3:49: network[0].inverted_residual.expansion: expected a number greater than 0, got 0"),
], ids=["convnext_block-after-a-global-pool", "inverted_residual-expansion-0"])
def test_a_wrong_use_of_the_new_blocks_is_one_line_at_the_block(network, message, write, cli):
    path = write("input: [32, 32, 3]\nnetwork:\n" + network)
    code, out, err = cli("validate", path)
    assert (code, out) == (1, "")
    assert err == f"{path.parent}/{message}\n"
