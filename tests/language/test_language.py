"""The language: variables, expressions, user blocks, repeat, extends and --set, hierarchy names."""

from __future__ import annotations

import pytest

import blockbuilder
from blockbuilder import UsageError

BASE = """
name: base
input: [32, 32, 3]
classes: 10
variables: {width: 16}
defaults:
  conv: {norm: batchnorm, activation: relu, use_bias: false}
blocks:
  unit:
    params: {filters: int, stride: 1}
    body:
      residual:
        body:
          - conv: {filters: $filters, stride: $stride}
          - conv: {filters: $filters, activation: none}
        after: relu
  stage:
    params: {filters: int, units: int, stride: 2}
    body:
      repeat: $units
      body:
        - unit: {filters: $filters, stride: "${stride if i == 0 else 1}"}
network:
  - conv: {filters: $width}
  - stage: {filters: $width, units: 2, stride: 1}
  - stage: {filters: "${2 * width}", units: 2}
  - global_avg_pool
  - dense: {units: $classes, activation: softmax}
"""


def paths(node):
    yield node.path
    for child in node.all_children():
        yield from paths(child)


def test_user_blocks_repeat_and_expressions_expand_with_hierarchical_names(write):
    arch = blockbuilder.load(write(BASE))
    names = list(paths(arch.root))
    assert names[:8] == ["", "conv1", "stage1", "stage1.unit1", "stage1.unit1.conv1", "stage1.unit1.conv2",
                         "stage1.unit1.relu1", "stage1.unit2"]
    assert "stage2.unit1.shortcut" in names  # auto projection: 16 -> 32 channels, stride 2
    assert "stage1.unit1.shortcut" not in names  # identity: same shape
    assert arch.output_shape == (10,)
    assert arch.depth == 1 + 2 * 2 + 2 * 2 + 1


def test_layer_names_follow_the_hierarchy(write):
    model = blockbuilder.build(blockbuilder.load(write(BASE)))
    names = [layer.name for layer in model.layers]
    assert names[:4] == ["input", "conv1", "conv1.bn", "conv1.relu"]
    assert "stage2.unit1.shortcut" in names and "stage2.unit1.shortcut.bn" in names
    assert "stage2.unit2.add" in names
    assert model.get_layer("stage2.unit1.conv1").strides == (2, 2)


def test_params_equal_keras_count(write):
    arch = blockbuilder.load(write(BASE))
    summary = blockbuilder.summarize(arch)
    model = blockbuilder.build(arch)
    assert summary.params_total == model.count_params()
    from blockbuilder.report.summary import estimate

    assert estimate(arch)[0] == model.count_params()
    assert summary.params_non_trainable == 2 * (16 + 4 * 16 + 4 * 32 + 32)  # BN moving mean/variance


def test_extends_merges_mappings_and_replaces_lists(write):
    write(BASE, "base.yaml")
    child = write("""
        extends: base.yaml
        name: child
        variables: {width: 8}
        defaults:
          conv: {activation: gelu}
        """, "child.yaml")
    arch = blockbuilder.load(child)
    assert arch.name == "child"
    assert arch.document["defaults"]["conv"] == {"norm": "batchnorm", "activation": "gelu", "use_bias": False}
    first = arch.root.children["body"][0]
    assert first.spec.filters == 8 and first.spec.activation == "gelu"
    replaced = write("extends: base.yaml\nnetwork: [flatten, {dense: 3}]\n", "replaced.yaml")
    assert [n.type for n in blockbuilder.load(replaced).root.children["body"]] == ["flatten", "dense"]


def test_set_overrides_use_the_same_rule(write):
    path = write(BASE)
    arch = blockbuilder.load(path, ["classes=100", "network[0].conv.filters=4",
                                    "defaults.conv={activation: tanh}", "variables.width=8"])
    assert arch.output_shape == (100,)
    conv = arch.root.children["body"][0]
    assert conv.spec.filters == 4 and conv.spec.activation == "tanh" and conv.spec.norm == "batchnorm"
    assert arch.root.children["body"][1].output_shape == (32, 32, 8)


@pytest.mark.parametrize("override, message", [
    ("classes", "--set expects PATH=VALUE"),
    ("network[9].conv.filters=3", "no item [9] there"),
    ("a..b=3", "is not like"),
])
def test_bad_overrides_are_usage_errors(write, override, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        blockbuilder.load(write(BASE), [override])


def test_error_from_an_override_names_the_override(write):
    with pytest.raises(blockbuilder.SpecError) as caught:
        blockbuilder.load(write(BASE), ["classes=0"])
    assert str(caught.value) == "--set classes=0: classes: expected a positive integer, got 0"


def test_branch_concat_add_mean_and_scalar_shorthands(write):
    arch = blockbuilder.load(write("""
        input: [28, 28, 1]
        network:
          - branch:
              paths:
                - [conv: {filters: 4, kernel: 1}]
                - [conv: 8, {conv: {filters: 2, kernel: 5}}]
                - [{max_pool: {size: 3, stride: 1, padding: same}}, {conv: {filters: 2, kernel: 1}}]
          - branch: {merge: mean, paths: [[conv: 8], [conv: 8], identity]}
          - dropout: 0.25
          - flatten
          - dense: 10
        """))
    body = arch.root.children["body"]
    assert body[0].output_shape == (28, 28, 8)
    assert body[1].output_shape == (28, 28, 8)
    assert [p.path for p in body[0].children["paths"]] == ["branch1.path1", "branch1.path2", "branch1.path3"]
    assert arch.depth == 2 + 1 + 1


def test_zero_pad_shortcut_has_no_parameters(write):
    arch = blockbuilder.load(write("""
        input: [32, 32, 16]
        network:
          - residual:
              body: [{conv: {filters: 32, stride: 2, use_bias: false}}]
              shortcut: zero_pad
        """))
    model = blockbuilder.build(arch)
    assert model.output_shape == (None, 16, 16, 32)
    assert model.count_params() == 3 * 3 * 16 * 32
    assert [layer.name for layer in model.layers if "shortcut" in layer.name] == [
        "residual1.shortcut_pool", "residual1.shortcut_pad"]


def test_resolve_prints_the_merged_document(write, cli):
    write(BASE, "base.yaml")
    child = write("extends: base.yaml\nclasses: 7\n", "child.yaml")
    code, out, _ = cli("resolve", child, "--set", "variables.width=4")
    assert code == 0
    assert "classes: 7" in out and "width: 4" in out and "extends" not in out
    assert "name: base" in out


def test_expressions_cover_the_grammar():
    from blockbuilder.language.expressions import evaluate

    scope = {"alpha": 48, "i": 3, "n": 54, "widths": [16, 32], "on": True}
    assert evaluate("round(16 + alpha * (i + 1) / n)", scope) == 20
    assert evaluate("widths[i % 2] // 2 + 2 ** 3 - 7 % 4", scope) == 21
    assert evaluate("max(1, min(4, floor(2.7), ceil(0.2))) if on and not i == 0 else -1", scope) == 1
    assert evaluate("'projection' if i > 2 else 'identity'", scope) == "projection"


SE = """
input: [8, 8, 16]
blocks:
  squeeze_excite:
    params: {ratio: 4}
    body:
      residual:
        body:
          - global_avg_pool: {keepdims: true}
          - dense: {units: "${in_channels // ratio}", activation: relu}
          - dense: {units: $in_channels, activation: sigmoid}
        merge: multiply
network:
  - conv: 16
  - squeeze_excite: {}
"""


def test_multiply_merge_is_a_broadcasting_gate(write):
    import numpy as np

    arch = blockbuilder.load(write(SE))
    model = blockbuilder.build(arch)
    assert arch.output_shape == (8, 8, 16)
    assert model.count_params() == (9 * 16 * 16 + 16) + (16 * 4 + 4) + (4 * 16 + 16)
    x = np.random.default_rng(0).random((1, 8, 8, 16), dtype="float32")
    conv = blockbuilder.build(blockbuilder.load(write(SE.replace("  - squeeze_excite: {}\n", ""), "c.yaml")))
    conv.set_weights(model.get_weights()[:2])
    gated, plain_conv = model(x).numpy(), conv(x).numpy()
    ratio = gated / plain_conv
    assert np.allclose(ratio, ratio[:, :1, :1, :], atol=1e-5)  # one factor per channel
    assert ((ratio > 0) & (ratio < 1)).all()


def test_multiply_merge_refuses_shapes_that_do_not_broadcast(write):
    path = write(SE.replace("global_avg_pool: {keepdims: true}", "max_pool: 2"))
    with pytest.raises(blockbuilder.SpecError, match=r"cannot multiply body \[4, 4, 16\] and shortcut "
                                                    r"\[8, 8, 16\]: shapes do not broadcast"):
        blockbuilder.load(path)
