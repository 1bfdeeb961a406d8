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

import pytest
from test_families import Reference, assert_same_outputs, assert_same_weights, built_pair

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
    for ours, reference in built_pair(request.param, REFERENCES[request.param], SIZE):
        yield request.param, ours, reference


def test_weights_in_keras_applications_order(networks):
    name, ours, reference = networks
    assert_same_weights(ours, reference, REFERENCES[name])


def test_computes_what_keras_applications_computes(networks):
    name, ours, reference = networks
    assert_same_outputs(ours, reference, (-1.0, 1.0), SIZE)
