"""EfficientNetV2 (keras.applications) and Inception-v4 (timm) in the zoo, one YAML page each, variants by ``extends:``.

EfficientNetV2 B0-B3, S, M, L: the parameters of each file at its reference input equal
keras.applications' (Keras 3.15, ``weights=None``; ../shared/REFERENCES.md, "More families"), from the
specs without building; each file's block table is keras.applications' ``DEFAULT_BLOCKS_ARGS``; B0 and S
(S's table and preprocessing are M's and L's) are built at 32x32 (the weights do not depend on the
input) beside keras.applications' model: the same weights in the same order, and with its weights
(drawn at random) copied over by order, the same features and probabilities (relative 1e-5; measured: 0).

Inception-v4: timm's ``inception_v4`` at 299x299x3 has 42,679,816 parameters (BatchNorm statistics are
buffers in PyTorch, so they equal the Keras *trainable* count) and 12,254.0 M MACs of its conv and linear
layers (REFERENCES.md); with timm importable, the weights of timm's model are copied over conv by conv
in the file's order and the outputs compared.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from test_families import (TOLERANCE, Reference, _features_and_output, _trainable, assert_same_outputs,
                           assert_same_weights, built_pair, max_relative_difference)

import blockbuilder
from blockbuilder.language.resolve import zoo_dir
from blockbuilder.report.summary import estimate

SIZE = 32  # the smallest input keras.applications accepts
PIXELS = (0.0, 255.0)  # every EfficientNetV2 file takes 0-255 pixels and rescales them itself
# zoo name -> keras.applications and its figures at the reference input (../shared/REFERENCES.md)
REFERENCES = {
    "efficientnet_v2_b0": Reference("EfficientNetV2B0", 7_200_312, 7_139_704, 361, SIZE, PIXELS),
    "efficientnet_v2_b1": Reference("EfficientNetV2B1", 8_212_124, 8_141_052, 443, SIZE, PIXELS, built=False),
    "efficientnet_v2_b2": Reference("EfficientNetV2B2", 10_178_374, 10_096_086, 462, SIZE, PIXELS, built=False),
    "efficientnet_v2_b3": Reference("EfficientNetV2B3", 14_467_622, 14_358_406, 538, SIZE, PIXELS, built=False),
    "efficientnet_v2_s": Reference("EfficientNetV2S", 21_612_360, 21_458_488, 672, SIZE, PIXELS),
    "efficientnet_v2_m": Reference("EfficientNetV2M", 54_431_388, 54_139_356, 963, SIZE, PIXELS, built=False),
    "efficientnet_v2_l": Reference("EfficientNetV2L", 119_027_848, 118_515_272, 1331, SIZE, PIXELS, built=False),
}
BUILT = sorted(name for name, ref in REFERENCES.items() if ref.built)
# keras.applications' DEFAULT_BLOCKS_ARGS key of each file's block table (B1-B3 share B0's)
TABLES = {"efficientnet_v2_b0": "efficientnetv2-b0", "efficientnet_v2_s": "efficientnetv2-s",
          "efficientnet_v2_m": "efficientnetv2-m", "efficientnet_v2_l": "efficientnetv2-l"}
TIMM_PARAMS, TIMM_MACS = 42_679_816, 12_254.0  # inception_v4, 299x299x3, MACs in millions


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_parameters_at_the_reference_input_equal_keras_applications(name):
    arch = blockbuilder.load(name)
    assert estimate(arch)[0] == REFERENCES[name].total
    assert arch.meta["source"] and arch.meta["accuracy"] and arch.meta["dataset"] == "ImageNet"


@pytest.fixture(scope="module", params=BUILT)
def networks(request):
    """(name, blockbuilder's model, keras.applications' model), both at 32x32, built once per network."""
    for ours, reference in built_pair(request.param, REFERENCES[request.param], SIZE):
        yield request.param, ours, reference


def test_built_parameters_and_weight_order_equal_keras_applications(networks):
    name, ours, reference = networks
    assert_same_weights(ours, reference, REFERENCES[name])


def test_keras_applications_weights_give_the_same_outputs(networks):
    """Weights copied by order: the same features before the classifier and the same probabilities."""
    name, ours, reference = networks
    assert_same_outputs(ours, reference, PIXELS, SIZE)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_block_tables_are_keras_applications(name):
    """Each file's stages (fused, kernel, repeats, width, expansion, stride), its squeeze-and-excitation
    on the MBConv stages only, its stem width and drop connect's unit count are keras.applications'."""
    from keras.src.applications.efficientnet_v2 import DEFAULT_BLOCKS_ARGS

    table = DEFAULT_BLOCKS_ARGS[TABLES[name]]
    arch = blockbuilder.load(name)
    stages = arch.document["blocks"]["stages"]["body"]
    assert [(s["stage"]["fused"], s["stage"]["k"], s["stage"]["n"], s["stage"]["c"], s["stage"]["t"], s["stage"]["s"])
            for s in stages] == [(a["conv_type"] == 1, a["kernel_size"], a["num_repeat"], a["output_filters"],
                                  a["expand_ratio"], a["strides"]) for a in table]
    assert {a["se_ratio"] for a in table if a["conv_type"] == 1} == {0}  # the fused stages have none
    assert {a["se_ratio"] for a in table if a["conv_type"] == 0} == {0.25}
    variables = arch.document["variables"]
    assert (variables["stem"], variables["units"]) == (table[0]["input_filters"], sum(a["num_repeat"] for a in table))


@pytest.mark.parametrize("name", ["efficientnet_v2_b1", "efficientnet_v2_b2", "efficientnet_v2_b3"])
def test_b1_to_b3_are_b0_with_numbers(name):
    """keras.applications' table in numbers: width and depth coefficients and the input size."""
    document = yaml.safe_load((zoo_dir() / f"{name}.yaml").read_text())
    assert document["extends"] == "efficientnet_v2_b0.yaml"
    assert set(document) <= {"extends", "name", "description", "input", "variables", "meta"}
    assert set(document["variables"]) == {"width", "depth"}


def test_drop_connect_rates_equal_keras_applications():
    """keras.applications' 0.2 * b / units, on fused and MBConv units alike (B3: depth 1.4 takes it past 0.2)."""
    import keras

    arch = blockbuilder.load("efficientnet_v2_b3", [f"input=[{SIZE}, {SIZE}, 3]"])
    ours = [node.spec.drop_path for node in arch.root.walk() if node.type in ("residual", "inverted_residual")
            and node.spec.drop_path > 0 and node.input_shape == node.output_shape]
    reference = keras.applications.EfficientNetV2B3(weights=None, input_shape=(SIZE, SIZE, 3))
    theirs = [layer.rate for layer in reference.layers if layer.name.endswith("_drop")]
    assert len(ours) == len(theirs) == 26 and max(theirs) > 0.2
    assert ours == pytest.approx(theirs, rel=1e-12)
    del reference
    keras.backend.clear_session()


def test_inception_v4_parameters_and_macs_equal_timm():
    import keras

    arch = blockbuilder.load("inception_v4")
    assert arch.input_shape == (299, 299, 3) and arch.output_shape == (1000,)
    assert round(estimate(arch)[1] / 1e6, 1) == TIMM_MACS
    model = blockbuilder.build(blockbuilder.load("inception_v4", ["input=[75, 75, 3]"]))  # the smallest it takes
    assert _trainable(model) == TIMM_PARAMS
    assert model.count_params() == estimate(arch)[0]
    del model
    keras.backend.clear_session()


def test_inception_v4_with_timm_weights_gives_timm_outputs():
    """timm's conv and BatchNorm weights, drawn at random, copied conv by conv in the file's order."""
    timm = pytest.importorskip("timm", exc_type=ImportError)
    import keras
    import torch

    size = 75
    arch = blockbuilder.load("inception_v4", [f"input=[{size}, {size}, 3]"])
    ours = blockbuilder.build(arch)
    ref = timm.create_model("inception_v4", pretrained=False).eval()
    assert sum(p.numel() for p in ref.parameters()) == TIMM_PARAMS
    convs = [m for m in ref.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in ref.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    nodes = [node for node in arch.root.walk() if node.type == "conv"]
    assert len(convs) == len(norms) == len(nodes) == 149
    rng = np.random.default_rng(0)
    for node, conv, norm in zip(nodes, convs, norms):
        kernel = rng.normal(0, math.sqrt(2 / conv.weight[0].numel()), conv.weight.shape).astype("float32")
        width = norm.num_features
        stats = [rng.uniform(0.5, 1.5, width), rng.normal(0, 0.02, width), rng.normal(0, 0.02, width),
                 rng.uniform(0.5, 1.5, width)]
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(kernel))
            for tensor, value in zip((norm.weight, norm.bias, norm.running_mean, norm.running_var), stats):
                tensor.copy_(torch.from_numpy(value.astype("float32")))
        ours.get_layer(node.path).set_weights([kernel.transpose(2, 3, 1, 0)])
        ours.get_layer(f"{node.path}.bn").set_weights(stats)
    linear = ref.last_linear
    ours.get_layer(next(n.path for n in arch.root.walk() if n.type == "dense")).set_weights(
        [linear.weight.detach().numpy().T, linear.bias.detach().numpy()])
    images = np.random.default_rng(1).uniform(-1, 1, (2, size, size, 3)).astype("float32")
    with torch.no_grad():
        batch = torch.from_numpy(images.transpose(0, 3, 1, 2))
        expected = [ref.forward_head(ref.forward_features(batch), pre_logits=True).numpy(),
                    torch.softmax(ref(batch), 1).numpy()]
    found = [np.asarray(t) for t in _features_and_output(ours)(images, training=False)]
    assert max_relative_difference(expected[0][0], expected[0][1]) > 100 * TOLERANCE
    assert max_relative_difference(found[0], expected[0]) <= TOLERANCE
    assert np.abs(found[1] - expected[1]).max() <= TOLERANCE
    del ours
    keras.backend.clear_session()
