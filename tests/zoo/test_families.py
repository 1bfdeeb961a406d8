"""The keras.applications families of the zoo, one YAML file each, equal keras.applications.

For every network: the parameters of the file at the reference input equal the reference's (from the
shapes, without Keras); built at a small input (the weights do not depend on it) our model and
keras.applications' have the same parameters, the same weight shapes in the same order, and, with
keras.applications' weights (drawn at random) copied over by order, the same features before the
classifier and the same probabilities (relative difference at most 1e-5). EfficientNet-B3 to -B7 are
checked from the specs only (B0's file with bigger numbers, as B1 and B2, which are built).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import yaml

import blockbuilder
from blockbuilder.language.resolve import zoo_dir
from blockbuilder.report.summary import estimate

TOLERANCE = 1e-5


@dataclass(frozen=True)
class Reference:
    constructor: str
    total: int
    trainable: int
    tensors: int
    size: int  # the smallest input keras.applications accepts: these comparisons run on CPU in seconds
    pixels: tuple[float, float] = (-1.0, 1.0)  # what the network takes: [-1, 1], or 0-255 when it rescales
    kwargs: dict[str, Any] = field(default_factory=dict)
    built: bool = True  # False: only the count from the specs is compared (a big model, same recipe as one built)


# zoo name -> keras.applications and its figures at the reference input (../shared/REFERENCES.md)
REFERENCES = {
    "mobilenet_v1": Reference("MobileNet", 4_253_864, 4_231_976, 137, 32),
    "xception": Reference("Xception", 22_910_480, 22_855_952, 236, 71),
    "mobilenet_v3_small": Reference("MobileNetV3Small", 2_554_968, 2_542_856, 210, 32, pixels=(0.0, 255.0)),
    "inception_resnet_v2": Reference("InceptionResNetV2", 55_873_736, 55_813_192, 898, 75),
    "mobilenet_v3_large": Reference("MobileNetV3Large", 5_507_432, 5_483_032, 266, 32, pixels=(0.0, 255.0)),
    "efficientnet_b0": Reference("EfficientNetB0", 5_330_571, 5_288_548, 314, 64, pixels=(0.0, 255.0)),
    # B1 scales depth (1.1), B2 also width (1.1): built and compared; B3-B7 the same file with larger numbers.
    "efficientnet_b1": Reference("EfficientNetB1", 7_856_239, 7_794_184, 442, 64, pixels=(0.0, 255.0)),
    "efficientnet_b2": Reference("EfficientNetB2", 9_177_569, 9_109_994, 442, 64, pixels=(0.0, 255.0)),
    "efficientnet_b3": Reference("EfficientNetB3", 12_320_535, 12_233_232, 499, 64, built=False),
    "efficientnet_b4": Reference("EfficientNetB4", 19_466_823, 19_341_616, 613, 64, built=False),
    "efficientnet_b5": Reference("EfficientNetB5", 30_562_527, 30_389_784, 741, 64, built=False),
    "efficientnet_b6": Reference("EfficientNetB6", 43_265_143, 43_040_704, 855, 64, built=False),
    "efficientnet_b7": Reference("EfficientNetB7", 66_658_687, 66_347_960, 1040, 64, built=False),
}
BUILT = sorted(name for name, ref in REFERENCES.items() if ref.built)


def _trainable(model) -> int:
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def randomised(model, seed: int = 0) -> list[np.ndarray]:
    """The model's weights drawn at random, so that a misplaced layer shows in the output.

    Norm statistics, scales and offsets are drawn (fresh ones are identities), kernels with a He scale
    (variance 2 / fan-in) so that the image still reaches the classifier.
    """
    rng = np.random.default_rng(seed)
    depthwise = {id(layer.kernel) for layer in model.layers if type(layer).__name__ == "DepthwiseConv2D"}
    depthwise |= {id(layer.depthwise_kernel) for layer in model.layers if type(layer).__name__ == "SeparableConv2D"}
    values = []
    for weight in model.weights:
        shape, name = tuple(weight.shape), weight.path.rsplit("/", 1)[-1]
        if name == "count":
            value = np.asarray(0)
        elif name in ("moving_variance", "variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name in ("moving_mean", "beta", "bias", "mean"):
            value = rng.normal(0.0, 0.02, shape)
        elif name == "gamma":
            value = rng.uniform(0.5, 1.5, shape)
        else:  # a kernel: (kh, kw, in, out), depthwise (kh, kw, channels, multiplier), dense (in, out)
            fan_in = math.prod(shape[:2]) if id(weight) in depthwise else math.prod(shape[:-1])
            value = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
        values.append(np.asarray(value, dtype=weight.dtype))
    return values


def _features_and_output(model):
    """A model giving the last global average pool's output (the classifier's input) and the output."""
    import keras

    pool = next(layer for layer in reversed(model.layers) if type(layer).__name__ == "GlobalAveragePooling2D")
    return keras.Model(model.input, [pool.output, model.output])


def max_relative_difference(found: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(found - expected).max() / max(float(np.abs(expected).max()), 1e-30))


def built_pair(name: str, ref: Reference, size: int) -> Iterator[tuple[Any, Any]]:
    """blockbuilder's model of ``name`` and keras.applications' (``weights=None``), both at size x size, for
    a module fixture: made once per network, the session cleared after."""
    import keras

    ours = blockbuilder.build(blockbuilder.load(name, [f"input=[{size}, {size}, 3]"]))
    reference = getattr(keras.applications, ref.constructor)(weights=None, input_shape=(size, size, 3), **ref.kwargs)
    yield ours, reference
    del ours, reference
    keras.backend.clear_session()


def assert_same_weights(ours: Any, reference: Any, ref: Reference) -> None:
    """The parameters (total and trainable) and the weight tensors, in keras.applications' order."""
    assert (ours.count_params(), _trainable(ours)) == (reference.count_params(), _trainable(reference)) \
        == (ref.total, ref.trainable)
    assert len(ours.weights) == len(reference.weights) == ref.tensors
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in reference.weights]


def assert_same_outputs(ours: Any, reference: Any, pixels: tuple[float, float], size: int) -> None:
    """Weights copied by order: the same features before the classifier and the same probabilities."""
    weights = randomised(reference)
    reference.set_weights(weights)
    for layer in reference.layers:  # Keras' Normalization reads its weights when built, not when they are set
        if type(layer).__name__ == "Normalization":
            layer.finalize_state()
    ours.set_weights(weights)
    images = np.random.default_rng(1).uniform(*pixels, (2, size, size, 3)).astype("float32")
    expected = [np.asarray(t) for t in _features_and_output(reference)(images, training=False)]
    found = [np.asarray(t) for t in _features_and_output(ours)(images, training=False)]
    assert [e.shape for e in expected] == [f.shape for f in found]
    # The features depend on the image (a comparison of features that forgot their input could not fail).
    assert max_relative_difference(expected[0][0], expected[0][1]) > 1000 * TOLERANCE
    assert max_relative_difference(found[0], expected[0]) <= TOLERANCE
    assert np.abs(found[1] - expected[1]).max() <= TOLERANCE


@pytest.fixture(scope="module", params=BUILT)
def networks(request):
    """(name, blockbuilder's model, keras.applications' model, the input size), built once per network."""
    name = request.param
    size = REFERENCES[name].size
    for ours, reference in built_pair(name, REFERENCES[name], size):
        yield name, ours, reference, size


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_parameters_at_the_reference_input_equal_keras_applications(name):
    arch = blockbuilder.load(name)
    ref = REFERENCES[name]
    assert estimate(arch)[0] == ref.total
    assert arch.meta["source"] and arch.meta["accuracy"]


def test_built_parameters_and_weight_order_equal_keras_applications(networks):
    name, ours, reference, _ = networks
    assert_same_weights(ours, reference, REFERENCES[name])


def test_keras_applications_weights_give_the_same_outputs(networks):
    """Weights copied by order: the same features before the classifier and the same probabilities."""
    name, ours, reference, size = networks
    assert_same_outputs(ours, reference, REFERENCES[name].pixels, size)


@pytest.mark.parametrize("b", range(1, 8))
def test_efficientnet_b1_to_b7_are_b0_with_numbers(b):
    """keras.applications' table in numbers: width and depth coefficients, input size, dropout."""
    document = yaml.safe_load((zoo_dir() / f"efficientnet_b{b}.yaml").read_text())
    assert document["extends"] == "efficientnet_b0.yaml"
    assert set(document) <= {"extends", "name", "description", "input", "variables", "meta"}
    assert set(document["variables"]) == {"width", "depth", "dropout"}


@pytest.mark.parametrize(("name", "constructor"), [("mobilenet_v3_large", "MobileNetV3Large"),
                                                   ("mobilenet_v3_small", "MobileNetV3Small")])
def test_mobilenet_v3_alpha_equals_keras_applications(name, constructor):
    import keras

    arch = blockbuilder.load(name, ["variables.alpha=0.75"])
    reference = getattr(keras.applications, constructor)(weights=None, alpha=0.75, input_shape=(32, 32, 3))
    assert estimate(arch)[0] == reference.count_params()
    del reference
    keras.backend.clear_session()


def test_efficientnet_drop_connect_rates_equal_keras_applications():
    """Stochastic depth rises as keras.applications' drop_connect_rate * b / blocks (B3: depth 1.4 rounds)."""
    import keras

    arch = blockbuilder.load("efficientnet_b3", ["input=[32, 32, 3]"])
    ours = [node.spec.drop_path for node in arch.root.walk() if node.type == "inverted_residual"
            and node.spec.drop_path > 0 and node.input_shape == node.output_shape]
    reference = keras.applications.EfficientNetB3(weights=None, input_shape=(32, 32, 3))
    theirs = [layer.rate for layer in reference.layers if layer.name.endswith("_drop")]
    assert len(ours) == len(theirs) == 19
    assert ours == pytest.approx(theirs, rel=1e-12)
    del reference
    keras.backend.clear_session()
