"""The keras.applications families of the zoo, one YAML file each, equal keras.applications.

For every network: the parameters of the file at the reference input equal the reference's (from the
shapes, without Keras); built at a small input (the weights do not depend on it) our model and
keras.applications' have the same parameters, the same weight shapes in the same order, and, with
keras.applications' weights (drawn at random) copied over by order, the same features before the
classifier and the same probabilities (relative difference at most 1e-5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import blockbuilder
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


# zoo name -> keras.applications and its figures at the reference input (../shared/REFERENCES.md)
REFERENCES = {
    "mobilenet_v1": Reference("MobileNet", 4_253_864, 4_231_976, 137, 32),
    "xception": Reference("Xception", 22_910_480, 22_855_952, 236, 71),
    "mobilenet_v3_small": Reference("MobileNetV3Small", 2_554_968, 2_542_856, 210, 32, pixels=(0.0, 255.0)),
    "inception_resnet_v2": Reference("InceptionResNetV2", 55_873_736, 55_813_192, 898, 75),
    "efficientnet_b0": Reference("EfficientNetB0", 5_330_571, 5_288_548, 314, 64, pixels=(0.0, 255.0)),
}


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


@pytest.fixture(scope="module", params=sorted(REFERENCES))
def networks(request):
    """(name, blockbuilder's model, keras.applications' model, the input size), built once per network."""
    import keras

    name = request.param
    ref = REFERENCES[name]
    size = ref.size
    ours = blockbuilder.build(blockbuilder.load(name, [f"input=[{size}, {size}, 3]"]))
    reference = getattr(keras.applications, ref.constructor)(weights=None, input_shape=(size, size, 3), **ref.kwargs)
    yield name, ours, reference, size
    del ours, reference
    keras.backend.clear_session()


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_parameters_at_the_reference_input_equal_keras_applications(name):
    arch = blockbuilder.load(name)
    ref = REFERENCES[name]
    assert estimate(arch)[0] == ref.total
    assert arch.meta["source"] and arch.meta["accuracy"]


def test_built_parameters_and_weight_order_equal_keras_applications(networks):
    name, ours, reference, _ = networks
    ref = REFERENCES[name]
    assert (ours.count_params(), _trainable(ours)) == (reference.count_params(), _trainable(reference)) \
        == (ref.total, ref.trainable)
    assert len(ours.weights) == len(reference.weights) == ref.tensors
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in reference.weights]


def test_keras_applications_weights_give_the_same_outputs(networks):
    """Weights copied by order: the same features before the classifier and the same probabilities."""
    name, ours, reference, size = networks
    weights = randomised(reference)
    reference.set_weights(weights)
    for layer in reference.layers:  # Keras' Normalization reads its weights when built, not when they are set
        if type(layer).__name__ == "Normalization":
            layer.finalize_state()
    ours.set_weights(weights)
    images = np.random.default_rng(1).uniform(*REFERENCES[name].pixels, (2, size, size, 3)).astype("float32")
    expected = [np.asarray(t) for t in _features_and_output(reference)(images, training=False)]
    found = [np.asarray(t) for t in _features_and_output(ours)(images, training=False)]
    assert [e.shape for e in expected] == [f.shape for f in found]
    # The features depend on the image (a comparison of features that forgot their input could not fail).
    assert max_relative_difference(expected[0][0], expected[0][1]) > 1000 * TOLERANCE
    assert max_relative_difference(found[0], expected[0]) <= TOLERANCE
    assert np.abs(found[1] - expected[1]).max() <= TOLERANCE
