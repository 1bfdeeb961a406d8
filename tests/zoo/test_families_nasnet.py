"""NASNet-A (keras.applications.NASNetMobile and NASNetLarge) in the zoo: cells that read the two cells
before them, written with graph inputs (``from:``, a block's ``inputs:``, ``merge``).

The parameters of each file at its reference input equal keras.applications' (Keras 3.15,
``weights=None``; ../shared/REFERENCES.md, "More families"), from the specs without building. Both are
built at 32x32 (the weights do not depend on the input) beside keras.applications' model: the same
weights in the same order, and with its weights (drawn at random) copied over by order, the same
features and probabilities (relative 1e-5; measured: 0, bit for bit). NASNet-Large is NASNet-Mobile's
file with keras.applications' numbers and ``skip_reduction`` (the cell after a reduction reads the cell
two before it), so its comparison checks that rule.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_families import TOLERANCE, Reference, _features_and_output, _trainable, max_relative_difference, randomised

import blockbuilder
from blockbuilder.report.summary import estimate

SIZE = 32  # the smallest input keras.applications accepts
REFERENCES = {
    "nasnet_mobile": Reference("NASNetMobile", 5_326_716, 5_289_978, 1126, SIZE),
    "nasnet_large": Reference("NASNetLarge", 88_949_818, 88_753_150, 1546, SIZE),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_parameters_at_the_reference_input_equal_keras_applications(name):
    arch = blockbuilder.load(name)
    assert estimate(arch)[0] == REFERENCES[name].total
    assert arch.meta["source"] and arch.meta["accuracy"]


@pytest.fixture(scope="module", params=sorted(REFERENCES))
def networks(request):
    """(name, blockbuilder's model, keras.applications' model), both at 32x32, built once per network."""
    import keras

    name = request.param
    ours = blockbuilder.build(blockbuilder.load(name, [f"input=[{SIZE}, {SIZE}, 3]"]))
    reference = getattr(keras.applications, REFERENCES[name].constructor)(weights=None, input_shape=(SIZE, SIZE, 3))
    yield name, ours, reference
    del ours, reference
    keras.backend.clear_session()


def test_weights_in_keras_applications_order(networks):
    name, ours, reference = networks
    ref = REFERENCES[name]
    assert (ours.count_params(), _trainable(ours)) == (reference.count_params(), _trainable(reference)) \
        == (ref.total, ref.trainable)
    assert len(ours.weights) == len(reference.weights) == ref.tensors
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in reference.weights]


def test_computes_what_keras_applications_computes(networks):
    name, ours, reference = networks
    weights = randomised(reference)
    reference.set_weights(weights)
    ours.set_weights(weights)
    images = np.random.default_rng(1).uniform(-1.0, 1.0, (2, SIZE, SIZE, 3)).astype("float32")
    expected = [np.asarray(t) for t in _features_and_output(reference)(images, training=False)]
    found = [np.asarray(t) for t in _features_and_output(ours)(images, training=False)]
    assert max_relative_difference(expected[0][0], expected[0][1]) > 1000 * TOLERANCE
    assert max_relative_difference(found[0], expected[0]) <= TOLERANCE
    assert np.abs(found[1] - expected[1]).max() <= TOLERANCE
