"""Issue 21, item 3: conditional structure -- computed block types, block-valued parameters, ``repeat: 0``,
entries left out by ``if:``, and ``zero_pad: 0`` that builds no layer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import blockbuilder
from blockbuilder import SpecError

HEAD = "input: [16, 16, 3]\nclasses: 10\n"

UNIT = HEAD + """blocks:
  unit:
    params: {stride: 1, act: {type: any, default: {activation: relu}}}
    body:
      - conv: {filters: 8, stride: $stride, activation: none}
      - $act
      - "${'identity' if stride == 1 else 'batchnorm'}"
      - {conv: 8, if: "${stride == 2}"}
network:
"""


def children(arch, path):
    node = next(n for n in walk(arch.root) if n.path == path)
    return [(child.path, child.type) for child in node.all_children()]


def walk(node):
    yield node
    for child in node.all_children():
        yield from walk(child)


def error_of(write, text: str) -> str:
    path = write(text)
    with pytest.raises(SpecError) as caught:
        blockbuilder.load(path)
    return str(caught.value).replace(str(path), "arch.yaml")


def test_a_computed_block_type_and_a_conditional_entry_follow_the_parameters(write):
    arch = blockbuilder.load(write(UNIT + "  - unit\n  - unit: {stride: 2}\n"))
    assert children(arch, "unit1") == [("unit1.conv1", "conv"), ("unit1.relu1", "activation"),
                                       ("unit1.identity1", "identity")]
    assert children(arch, "unit2") == [("unit2.conv1", "conv"), ("unit2.relu1", "activation"),
                                       ("unit2.batchnorm1", "batchnorm"), ("unit2.conv2", "conv")]
    assert arch.output_shape == (8, 8, 8)


def test_a_block_valued_parameter_takes_a_name_or_an_entry(write):
    arch = blockbuilder.load(write(UNIT + "  - unit: {act: identity}\n  - unit: {act: {activation: sigmoid}}\n"))
    assert children(arch, "unit1")[1] == ("unit1.identity1", "identity")
    assert children(arch, "unit2")[1] == ("unit2.sigmoid1", "activation")
    model = blockbuilder.build(arch)
    assert [layer.name for layer in model.layers] == ["input", "unit1.conv1", "unit2.conv1", "unit2.sigmoid1"]
    assert blockbuilder.summarize(arch).params_total == model.count_params()


BLOCK_PARAM = HEAD + """blocks:
  unit:
    params: {act: any}
    body:
      - conv: 8
      - $act
network:
"""


@pytest.mark.parametrize("text, message", [
    (BLOCK_PARAM + "  - unit: {act: idenity}\n",
     "arch.yaml:8:9: blocks.unit.body[1]: unknown block type 'idenity' (did you mean 'identity'?) "
     "(in block 'unit' used at arch.yaml:10:5)"),
    (BLOCK_PARAM + "  - unit:\n      act: {activatoin: relu}\n",  # an entry: at the argument's line
     "arch.yaml:11:13: blocks.unit.body[1]: unknown block type 'activatoin' (did you mean 'activation'?) "
     "(in block 'unit' used at arch.yaml:10:5)"),
    (BLOCK_PARAM + "  - unit: {act: 3}\n",
     "arch.yaml:8:9: blocks.unit.body[1]: expected a block (a name, or a mapping like {conv: {filters: 32}}), "
     "got 3 (in block 'unit' used at arch.yaml:10:5)"),
    (HEAD + "network:\n  - \"${'conv' if classes > 2 else 'identity'}\"\n",
     "arch.yaml:4:5: network[0].conv.filters: missing required key 'filters'"),
    (HEAD + "network:\n  - \"${'identity' if clases > 2 else 'flatten'}\"\n",
     "arch.yaml:4:5: network[0]: unknown name 'clases' (did you mean 'classes'?)"),
    (HEAD + "network:\n  - \"${'zero_padd' if classes > 2 else 'flatten'}\"\n",
     "arch.yaml:4:5: network[0]: unknown block type 'zero_padd' (did you mean 'zero_pad'?)"),
])
def test_a_misused_block_value_is_one_located_error(write, text, message):
    assert error_of(write, text) == message


# -- repeat: 0 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("times", ["0", '"${n - 2}"'])
def test_repeat_zero_times_builds_and_counts_nothing(write, times):
    text = HEAD + "variables: {n: 2}\nnetwork:\n  - conv: 4\n  - repeat: " + times + \
        "\n    body: [conv: 8, conv: 8]\n  - flatten\n"
    arch = blockbuilder.load(write(text))
    without = blockbuilder.load(write(HEAD + "network:\n  - conv: 4\n  - flatten\n", "plain.yaml"))
    assert arch.output_shape == without.output_shape == (16 * 16 * 4,)
    assert arch.depth == without.depth == 1
    summary, plain = blockbuilder.summarize(arch), blockbuilder.summarize(without)
    assert (summary.params_total, summary.macs) == (plain.params_total, plain.macs)
    model = blockbuilder.build(arch)
    assert [layer.name for layer in model.layers] == ["input", "conv1", "flatten1"]


def test_repeat_below_zero_is_still_an_error(write):
    assert error_of(write, HEAD + "network:\n  - repeat: -1\n    body: [conv: 4]\n") == (
        "arch.yaml:4:13: network[0].repeat.times: input should be greater than or equal to 0, got -1")


@settings(max_examples=8, deadline=None, database=None)
@given(times=st.integers(0, 3), kept=st.booleans())
def test_repeat_and_if_equal_the_blocks_written_out(tmp_path_factory, times, kept):
    folder = tmp_path_factory.mktemp("cond")
    (folder / "cond.yaml").write_text(HEAD + f"variables: {{times: {times}, kept: {str(kept).lower()}}}\nnetwork:\n"
                                      "  - repeat: $times\n    body: [conv: 4]\n  - {conv: 4, if: $kept}\n")
    (folder / "out.yaml").write_text(HEAD + "network:\n" + "  - conv: 4\n" * (times + kept) + "  - identity\n")
    cond, out = blockbuilder.load(folder / "cond.yaml"), blockbuilder.load(folder / "out.yaml")
    assert cond.depth == out.depth == times + kept
    assert cond.output_shape == out.output_shape
    assert blockbuilder.summarize(cond).params_total == blockbuilder.summarize(out).params_total


# -- if: ----------------------------------------------------------------------------------------------


def test_if_leaves_out_an_entry_in_any_list_and_a_one_block_body(write):
    arch = blockbuilder.load(write(HEAD + """
        blocks:
          maybe_pool:
            params: {pool: bool}
            body: {max_pool: 2, if: $pool}
        network:
          - {conv: 8, if: false}
          - {conv: 4, if: true, name: kept}
          - maybe_pool: {pool: false}
          - maybe_pool: {pool: true}
          - branch:
              paths: [[conv: 2, {conv: 2, if: "${classes > 100}"}], [conv: 3]]
        """.replace("\n        ", "\n")))
    top = [node.path for node in arch.root.all_children()]
    assert top == ["kept", "maybe_pool1", "maybe_pool2", "branch1"]
    assert children(arch, "maybe_pool1") == []
    assert arch.output_shape == (8, 8, 5)
    assert arch.depth == 2  # kept, then the branch (paths side by side)


@pytest.mark.parametrize("condition, shown", [("3", "3"), ('"${classes}"', "10"), ("yes please", "'yes please'")])
def test_an_if_that_is_not_true_or_false_is_an_error_at_its_line(write, condition, shown):
    assert error_of(write, HEAD + f"network:\n  - conv: 8\n    if: {condition}\n") == (
        f"arch.yaml:5:9: network[0].if: 'if' is true or false (a condition like \"${{stride == 2}}\"), got {shown}")


def test_a_bad_if_is_one_line_from_the_command_line(write, cli):
    code, out, err = cli("validate", write(HEAD + "network:\n  - {conv: 8, if: \"${clases == 1}\"}\n"))
    assert code == 1 and "Traceback" not in err
    assert err.strip().endswith("arch.yaml:4:19: network[0].if: unknown name 'clases' (did you mean 'classes'?)")
    assert len(err.strip().splitlines()) == 1


# -- zero_pad: 0 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["0", "{padding: [0, 0]}", "{padding: [[0, 0], [0, 0]]}"])
def test_zero_padding_of_nothing_builds_no_layer(write, padding):
    arch = blockbuilder.load(write(HEAD + f"network:\n  - zero_pad: {padding}\n  - conv: 4\n  - zero_pad: 1\n"))
    model = blockbuilder.build(arch)
    assert [layer.name for layer in model.layers] == ["input", "conv1", "zero_pad2"]
    assert model.output_shape == (None, 18, 18, 4) and arch.output_shape == (18, 18, 4)
    assert blockbuilder.summarize(arch).params_total == model.count_params() == 112


DECLARED = HEAD + """blocks:
  unit:
    params: {act: block, post: {type: block, default: identity}}
    body:
      - conv: 8
      - $act
      - $post
network:
"""


@pytest.mark.parametrize("call, message", [
    ("  - unit:\n      act: idenity\n",
     "arch.yaml:12:12: network[0].unit.act: unknown block type 'idenity' (did you mean 'identity'?)"),
    ("  - unit: {act: 3}\n", "arch.yaml:11:17: network[0].unit.act: expected block for parameter 'act', got 3"),
    ("  - unit\n", "arch.yaml:11:5: network[0].unit: block 'unit' needs parameter 'act'"),
])
def test_a_parameter_declared_block_is_checked_at_the_argument(write, call, message):
    assert error_of(write, DECLARED + call) == message


def test_a_parameter_declared_block_takes_a_name_or_an_entry(write):
    arch = blockbuilder.load(write(DECLARED + "  - unit: {act: identity}\n"
                                   "  - unit: {act: {activation: relu}, post: batchnorm}\n"))
    assert [c[1] for c in children(arch, "unit2")] == ["conv", "activation", "batchnorm"]
