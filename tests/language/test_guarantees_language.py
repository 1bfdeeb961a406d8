"""Issue 10, items 1-8: hostile or unlucky files end in one located error -- never a hang, a traceback,
or a wrong answer -- and whatever ``build`` would reject, ``validate`` rejects first."""

from __future__ import annotations

import time

import pytest

import blockbuilder
from blockbuilder import Limits, SpecError

HEAD = "input: [16, 16, 3]\nclasses: 10\n"


def error_of(write, text: str, **kwargs) -> str:
    path = write(text)
    with pytest.raises(SpecError) as caught:
        blockbuilder.load(path, **kwargs)
    return str(caught.value).replace(str(path), "arch.yaml")


# -- 1. expression cost ----------------------------------------------------------------------------


@pytest.mark.parametrize("expression", ["round(5, -10**8)", "round(5, 10**8)", "round(1.5, 16)"])
def test_round_with_huge_digits_is_refused_at_once(write, expression):
    started = time.process_time()
    message = error_of(write, HEAD + f'network:\n  - conv: {{filters: "${{{expression}}}"}}\n')
    assert message.startswith("arch.yaml:4:21: network[0].conv.filters: cannot compute 'round(")
    assert "round's digits must be an integer between -15 and 15" in message
    assert time.process_time() - started < 5  # generous: the unbounded version never finished


# -- 2. recursion ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, default", [
    ("sequence", "{body: [sequence]}"),
    ("residual", "{body: [residual]}"),
    ("repeat", "{times: 1, body: [repeat]}"),
    ("branch", "{paths: [[branch], [identity]]}"),
    ("fractal", "{columns: 1, body: [fractal]}"),
])
def test_a_default_that_contains_its_own_type_is_an_error(write, kind, default):
    message = error_of(write, HEAD + f"defaults:\n  {kind}: {default}\nnetwork:\n  - {kind}\n")
    assert message.startswith("arch.yaml:")
    assert "blocks nested deeper than 256 levels (does a block or a default contain itself?)" in message
    assert len(message) < 400  # the 256-level document path is shown by its two ends


def _deep_chain(blocks: int, sequences: int) -> str:
    """``b0`` wraps ``b1`` in ``sequences`` nested sequences, ..., the last wraps a conv."""
    lines = [HEAD, "blocks:\n"]
    for index in range(blocks):
        inner = f"b{index + 1}" if index + 1 < blocks else "{conv: 4}"
        body = inner
        for _ in range(sequences):
            body = f"{{sequence: [{body}]}}"
        lines.append(f"  b{index}:\n    body: {body}\n")
    lines.append("network:\n  - b0\n  - global_avg_pool\n  - dense: 10\n")
    return "".join(lines)


def test_a_deep_but_legal_chain_of_user_blocks_loads_and_builds(write):
    arch = blockbuilder.load(write(_deep_chain(31, 7)))
    summary = blockbuilder.summarize(arch)
    assert summary.params_total == 3 * 3 * 3 * 4 + 4 + 4 * 10 + 10
    assert summary.depth == 2


# -- 3 and 4. names -----------------------------------------------------------------------------


@pytest.mark.parametrize("network, expected", [
    ("  - conv: 4\n    name: a\n  - conv: 4\n    name: a\n",
     "arch.yaml:7:11: network[1].name: the name 'a' is already taken by another block here"),
    ("  - conv: 4\n    name: input\n",
     "arch.yaml:5:11: network[0].name: the name 'input' is reserved here (the model input names a layer"),
    ("  - residual:\n      body:\n        - conv: 8\n          name: shortcut\n",
     "arch.yaml:7:17: network[0].residual.body[0].name: the name 'shortcut' is reserved here (a residual"),
    ("  - conv: 4\n    name: a/b\n",
     "arch.yaml:5:11: network[0].name: a block name is letters, digits, '_' and '-' (at most 100), got 'a/b'"),
])
def test_names_that_keras_would_refuse_are_errors_at_their_line(write, network, expected):
    assert error_of(write, HEAD + "network:\n" + network).startswith(expected)


def test_an_input_name_with_a_slash_is_an_error(write):
    message = error_of(write, HEAD + "input_name: a/b\nnetwork:\n  - conv: 4\n")
    assert message == ("arch.yaml:3:13: input_name: an input name is letters, digits, '_' and '-' (at most 100), "
                       "got 'a/b'")


@pytest.mark.parametrize("value", ["bogus", '""', "identity"])
def test_an_unknown_initializer_is_an_error(write, value):
    message = error_of(write, HEAD + f"network:\n  - conv: {{filters: 4, kernel_initializer: {value}}}\n")
    assert message.startswith("arch.yaml:4:44: network[0].conv.kernel_initializer: expected one of 'glorot_uniform'")


def test_a_written_name_equal_to_an_automatic_one_still_adds_up(write):
    """Item 4: the summary's rows add up to the total, and every Keras layer name is unique."""
    text = HEAD + "network:\n  - conv: 4\n    name: conv2\n  - conv: 4\n  - flatten\n  - dense: 10\n"
    arch = blockbuilder.load(write(text))
    assert [child.name for child in arch.root.all_children()] == ["conv2", "conv1", "flatten1", "dense1"]
    summary = blockbuilder.summarize(arch)
    assert [block.params for block in summary.blocks] == [112, 148, 0, 10250]
    assert sum(block.params for block in summary.blocks) == summary.params_total == 10510


def test_the_same_name_in_pre_and_body_of_a_residual_is_numbered_apart(write):
    text = HEAD + "network:\n  - residual:\n      pre: [conv: 3]\n      body: [conv: 3]\n"
    arch = blockbuilder.load(write(text))
    residual = arch.root.all_children()[0]
    assert [node.name for node in residual.all_children()] == ["conv1", "conv2"]


# -- 5. model budget ------------------------------------------------------------------------------


def test_a_model_over_the_parameter_budget_is_refused_before_building(write):
    text = "input: [100, 100, 3]\nnetwork:\n  - flatten\n" + "  - dense: 30000\n" * 6
    started = time.process_time()
    message = error_of(write, text)
    assert message.startswith("arch.yaml:3:3: network: the model would have 5,400,180,000 parameters, over the "
                              "budget of 2,000,000,000 (raise it on purpose with --limit params=N)")
    assert time.process_time() - started < 5
    arch = blockbuilder.load(write(text), limits=Limits(params=6_000_000_000))
    assert arch.output_shape == (30000,)


def test_activation_memory_has_a_budget_too(write):
    message = error_of(write, "input: [8192, 8192, 3]\nnetwork:\n" + "  - conv: 64\n" * 2)
    assert "activations take 34,359,738,368 bytes per image, over the budget of 8,589,934,592" in message


# -- 6. file size ---------------------------------------------------------------------------------


def _sparse(path, size: int) -> None:
    with open(path, "wb") as stream:
        stream.truncate(size)  # no disk used: the file is all hole


def test_a_huge_file_is_refused_by_its_size_before_reading(tmp_path):
    big = tmp_path / "big.yaml"
    _sparse(big, 3 * 1024**3)
    started = time.process_time()
    with pytest.raises(SpecError) as caught:
        blockbuilder.load(big)
    assert str(caught.value) == f"{big}:1:1: file too large (3,221,225,472 bytes, at most 2,000,000)"
    assert time.process_time() - started < 1


def test_a_huge_base_file_is_refused_through_extends(tmp_path):
    _sparse(tmp_path / "base.yaml", 3 * 1024**3)
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\n")
    with pytest.raises(SpecError) as caught:
        blockbuilder.load(child)
    assert "base.yaml:1:1: file too large (3,221,225,472 bytes" in str(caught.value)


# -- 7. locations and long values --------------------------------------------------------------


def test_params_that_are_not_a_mapping_point_at_their_line(write):
    message = error_of(write, HEAD + "blocks:\n  unit:\n    params: 7\n    body: [conv: 4]\nnetwork: [unit]\n")
    assert message == ("arch.yaml:5:13: blocks.unit.params: 'params' maps each parameter to a type (int, float, "
                       "number, bool, str, list, block, any) or a default value, got 7")


def test_a_huge_bad_value_is_cut_in_the_message(write):
    message = error_of(write, HEAD + f"network:\n  - conv: {{filters: {'x' * 5000}}}\n")
    assert len(message) < 200
    assert message.endswith("expected an integer, got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...")


# -- 8. strict scalars ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry, expected", [
    ("conv: true", "network[0].conv.filters: expected an integer, got True"),
    ("conv: {filters: 4, stride: yes}", "network[0].conv.stride: expected an integer, got True"),
    ('conv: {filters: 4, stride: "2"}', "network[0].conv.stride: expected an integer, got '2'"),
    ('dropout: "0.5"', "network[0].dropout.rate: expected a number, got '0.5'"),
    ("repeat: {times: true, body: [conv: 4]}", "network[0].repeat.times: expected an integer, got True"),
    ("conv: {filters: 4, use_bias: 1}", "network[0].conv.use_bias: expected true or false, got 1"),
])
def test_booleans_and_strings_are_never_numbers(write, entry, expected):
    assert expected in error_of(write, HEAD + f"network:\n  - {entry}\n")


def test_user_block_parameters_are_strict_too(write):
    text = HEAD + "blocks:\n  unit:\n    params: {filters: int}\n    body: [conv: $filters]\nnetwork:\n"
    assert "expected int for parameter 'filters', got '16'" in error_of(write, text + '  - unit: {filters: "16"}\n')
    assert "expected int for parameter 'filters', got True" in error_of(write, text + "  - unit: {filters: true}\n")


def test_the_limit_flag_raises_a_budget_on_purpose(cli, write):
    path = write("input: [100, 100, 3]\nnetwork:\n  - flatten\n" + "  - dense: 30000\n" * 6)
    code, out, err = cli("validate", path)
    assert code == 1 and "over the budget of 2,000,000,000 (raise it on purpose with --limit params=N)" in err
    code, out, err = cli("validate", path, "--limit", "params=6e9")
    assert (code, err) == (0, "")
    assert "5,400,180,000 params" in out
    code, out, err = cli("validate", path, "--limit", "parms=6e9")
    assert code == 2 and "unknown budget 'parms' (did you mean 'params'?)" in err


def test_resolve_shows_a_document_that_fails_validation_then_the_error(cli, write):
    base = write("input: [8, 8, 1]\nnetwork:\n  - conv: 4\n", "base.yaml")
    child = write("extends: base.yaml\nnetwork:\n  - conv: {filters: -3}\n")
    code, out, err = cli("resolve", child)
    assert code == 1
    assert out == "input: [8, 8, 1]\nnetwork:\n- conv: {filters: -3}\n"
    assert err == f"{child}:3:21: network[0].conv.filters: expected a positive integer, got -3\n"
    code, out, err = cli("resolve", base, "--set", "classes=3")
    assert (code, err) == (0, "") and out.startswith("input: [8, 8, 1]\nnetwork:")


# -- issue 19, items 13 and 14 ----------------------------------------------------------------------


@pytest.mark.parametrize("name, shown", [('"a/b"', "'a/b'"), ('""', "''"), ("7", "7"), ('"my net"', "'my net'")])
def test_a_network_name_keras_cannot_take_is_an_error_at_its_line(cli, write, name, shown):
    path = write(f"name: {name}\n" + HEAD + "network:\n  - flatten\n  - dense: 10\n")
    for command in ("validate", "summary"):
        code, out, err = cli(command, path)
        assert (code, out) == (1, "")
        assert err == (f"{path}:1:7: name: a network name is letters, digits, '_', '-' and '.' (at most 100), "
                       f"got {shown}\n")


def test_a_network_name_with_dots_and_dashes_is_fine(write):
    assert blockbuilder.load(write('name: "resnet-50.v1_5"\n' + HEAD + "network:\n  - conv: 4\n")).name == \
        "resnet-50.v1_5"


def _deepest_chain(blocks: int, outer: int) -> str:
    """:func:`_deep_chain` of 7 sequences a block, inside ``outer`` more sequences in ``network``."""
    text = _deep_chain(blocks, 7)
    network = "b0"
    for _ in range(outer):
        network = f"{{sequence: [{network}]}}"
    return text.replace("network:\n  - b0\n", f"network:\n  - {network}\n")


def test_the_deepest_legal_nesting_validates_summarises_and_draws(cli, write, tmp_path):
    """Item 14: expansion allows MAX_NESTING levels; every command after it must take them too."""
    from blockbuilder.language.scope import MAX_NESTING

    path = write(_deepest_chain(32, MAX_NESTING - 32 * 7 - 1))
    for args in (("validate",), ("summary",), ("draw", "-o", tmp_path / "deep.svg")):
        code, out, err = cli(*args, path)
        assert (code, err) == (0, ""), args
    one_more = _deepest_chain(32, MAX_NESTING - 32 * 7 - 1).replace("{conv: 4}", "{sequence: [{conv: 4}]}")
    deeper = write(one_more, "deeper.yaml")
    for command in ("validate", "summary"):
        code, out, err = cli(command, deeper)
        assert code == 1 and f"blocks nested deeper than {MAX_NESTING} levels" in err and "\n" == err[-1]
        assert err.count("\n") == 1 and "Traceback" not in err


def test_a_deep_legal_chain_of_branches_validates_and_summarises(cli, write):
    path = write(_deep_chain(16, 7).replace("{sequence: [", "{branch: [[").replace("]}", "], [identity]]}"))
    for command in ("validate", "summary"):
        code, out, err = cli(command, path)
        assert (code, err) == (0, ""), command
