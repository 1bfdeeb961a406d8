"""Bad files end in one line: FILE:LINE:COL: PATH: message, exit code 1, no traceback."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import blockbuilder
from blockbuilder import SpecError
from blockbuilder.language.expressions import ExprError, evaluate

HEAD = "input: [32, 32, 3]\nclasses: 10\n"


def error_of(write, text: str) -> str:
    path = write(text)
    with pytest.raises(SpecError) as caught:
        blockbuilder.load(path)
    return str(caught.value).replace(str(path), "arch.yaml")


def test_negative_filters_points_at_the_line(write):
    text = HEAD + """network:
  - conv: {filters: 8}
  - residual:
      body:
        - conv: {filters: 8}
        - conv:
            filters: -3
"""
    assert error_of(write, text) == (
        "arch.yaml:9:22: network[1].residual.body[1].conv.filters: expected a positive integer, got -3")


def test_misspelled_key_suggests_the_right_one(write):
    message = error_of(write, HEAD + "network:\n  - conv: {filtres: 8}\n")
    assert message.startswith("arch.yaml:4:12: network[0].conv.filtres: unknown key 'filtres'")
    assert "(did you mean 'filters'?)" in message


def test_misspelled_block_type_suggests_the_right_one(write):
    message = error_of(write, HEAD + "network:\n  - global_avgpool\n")
    assert message == ("arch.yaml:4:5: network[0]: unknown block type 'global_avgpool' "
                       "(did you mean 'global_avg_pool'?)")


def test_misspelled_parameter_of_a_user_block(write):
    text = HEAD + """blocks:
  unit:
    params: {filters: int}
    body: [conv: {filters: $filters}]
network:
  - unit: {filers: 8}
"""
    message = error_of(write, text)
    assert message.startswith("arch.yaml:8:20: network[0].unit.filers: block 'unit' has no parameter 'filers'")
    assert "did you mean 'filters'" in message


def test_missing_parameter_of_a_user_block(write):
    text = HEAD + """blocks:
  unit:
    params: {filters: int}
    body: [conv: {filters: $filters}]
network:
  - unit: {}
"""
    assert error_of(write, text) == "arch.yaml:8:5: network[0].unit: block 'unit' needs parameter 'filters'"


def test_error_inside_a_user_block_names_where_it_was_used(write):
    text = HEAD + """blocks:
  unit:
    params: {filters: int}
    body:
      - conv: {filters: "${filters - 8}"}
network:
  - unit: {filters: 16}
  - unit: {filters: 8}
"""
    message = error_of(write, text)
    assert message == ("arch.yaml:7:25: blocks.unit.body[0].conv.filters: expected a positive integer, "
                       "got 0 (in block 'unit' used at arch.yaml:10:5)")


def test_residual_merge_of_different_shapes(write):
    text = HEAD + """network:
  - residual:
      body: [conv: {filters: 8, stride: 2}]
      shortcut: identity
"""
    assert error_of(write, text) == ("arch.yaml:4:5: network[0]: cannot add body [16, 16, 8] and "
                                     "shortcut [32, 32, 3]: shapes differ")


def test_concat_of_different_spatial_sizes(write):
    text = HEAD + """network:
  - branch:
      paths:
        - [conv: {filters: 8}]
        - [max_pool: 2]
"""
    assert error_of(write, text) == ("arch.yaml:4:5: network[0]: cannot concat path1 [32, 32, 8] with "
                                     "path2 [16, 16, 3]: spatial sizes differ")


def test_pool_that_shrinks_to_zero(write):
    text = HEAD + "network:\n  - conv: {filters: 4, kernel: 5, padding: valid, stride: 4}\n" \
        "  - max_pool: {size: 16}\n"
    assert error_of(write, text) == ("arch.yaml:5:5: network[1]: a 16x16 window on a 7x7 input gives an "
                                     "output of 0x0: the spatial size shrinks to zero")


def test_non_positive_width_from_an_expression(write):
    text = HEAD + "variables: {width: 0.1}\nnetwork:\n  - dense: {units: '${int(width)}'}\n"
    assert error_of(write, text) == ("arch.yaml:5:20: network[0].dense.units: expected a positive "
                                     "integer, got 0")


def test_unknown_name_in_expression(write):
    message = error_of(write, HEAD + "network:\n  - conv: {filters: $witdh}\n")
    assert message == "arch.yaml:4:21: network[0].conv.filters: unknown name 'witdh'"


BRANCHES = HEAD + """blocks:
  unit:
    params: {stride: int, width: {type: int, default: 8}}
    body:
      - conv: {filters: "EXPR", stride: $stride}
network:
  - unit: {stride: 1}
"""


@pytest.mark.parametrize("expression, error", [
    ("16 if stride == 1 else widht", "unknown name 'widht' (did you mean 'width'?)"),
    ("width or sqrt(stride)", "call 'sqrt' is not allowed (functions: round, floor, ceil, min, max, int, abs)"),
    ("width if stride > 2 < strid else 4", "unknown name 'strid' (did you mean 'stride'?)"),
    ("8 if stride else stride @ 2", "operator in 'stride @ 2' is not allowed"),
])
def test_a_branch_not_taken_is_checked_too(write, expression, error):
    """The other side of ``a if c else b``, what ``or`` and a comparison chain cut short: checked at once,
    not in a later file that takes that branch."""
    message = error_of(write, BRANCHES.replace("EXPR", f"${{{expression}}}"))
    assert message == (f"arch.yaml:7:25: blocks.unit.body[0].conv.filters: {error} "
                       f"(in block 'unit' used at arch.yaml:9:5)")


@settings(max_examples=40, deadline=None)
@given(taken=st.booleans(), typo=st.sampled_from(["widht", "strde", "idth"]))
def test_a_misspelt_name_is_an_error_in_either_branch(taken, typo):
    """Whichever branch the condition takes, a misspelt name on either side is the same error."""
    for expression in (f"1 if {taken} else {typo}", f"{typo} if {taken} else 1"):
        with pytest.raises(ExprError, match=f"unknown name '{typo}'"):
            evaluate(expression, {"width": 8, "stride": 1})


@pytest.mark.parametrize("expression", ["__import__('os')", "().__class__", "open('x')", "[x for x in y]",
                                        "lambda: 1", "9 ** 9 ** 9"])
def test_expressions_cannot_escape(write, expression):
    message = error_of(write, HEAD + f'network:\n  - conv: {{filters: "${{{expression}}}"}}\n')
    assert message.startswith("arch.yaml:4:21: network[0].conv.filters: ")


def test_recursion_between_user_blocks(write):
    text = HEAD + """blocks:
  a: {body: [b]}
  b: {body: [a]}
network: [a]
"""
    assert "block 'a' uses itself (a -> b -> a)" in error_of(write, text)


def test_unknown_top_level_key(write):
    assert error_of(write, HEAD + "netwrok: []\n") == (
        "arch.yaml:3:1: netwrok: unknown key 'netwrok' (did you mean 'network'?)")


def test_bad_input_shape(write):
    assert error_of(write, "input: [32, 32]\nnetwork: [flatten]\n") == (
        "arch.yaml:1:8: input: expected [height, width, channels] of positive integers (at most 8192), "
        "got [32, 32]")


def test_invalid_yaml_syntax(write):
    message = error_of(write, HEAD + "network:\n  - conv: {filters: 8\n")
    assert message.startswith("arch.yaml:5:1: invalid YAML")


@pytest.mark.parametrize("name, text, expected", [
    ("repeat a billion times", HEAD + "network:\n  - repeat: 1000000000\n    body: [relu]\n",
     "less than or equal to 10000"),
    ("nested repeats", HEAD + "network:\n  - repeat: 10000\n    body:\n      - repeat: 10000\n"
     "        body: [identity]\n", "exceeds the limit of 20,000 blocks"),
    ("absurd width", HEAD + "network:\n  - conv: {filters: 1000000000}\n", "less than or equal to 1048576"),
    ("absurd layer", HEAD + "network:\n  - flatten\n  - dense: 1000000\n", "parameters (at most"),
    ("alias bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(9)),
     "too many aliases"),
    ("deep nesting", "network: " + "[" * 500 + "]" * 500 + "\n", "nesting deeper than"),
    ("binary garbage", "\x00\x01\x02\xff\xfe garbage", ""),
    ("python tag", "network: !!python/object/apply:os.system ['touch /tmp/blockbuilder-owned']\n",
     "is not allowed (plain YAML only)"),
])
def test_hostile_files_fail_fast(write, tmp_path, name, text, expected):
    path = tmp_path / "arch.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape") if "\xff" not in text else
                     b"\x00\x01\x02\xff\xfe garbage")
    started = time.process_time()  # CPU time: wall time on a shared machine measures the neighbours
    with pytest.raises(SpecError) as caught:
        blockbuilder.load(path)
    elapsed = time.process_time() - started
    assert expected in str(caught.value)
    assert str(caught.value).startswith(str(path) + ":")
    # A guard against a hang (these files once ran for minutes or forever), not a speed test: the
    # work is bounded by the limits (20,000 blocks, 256 levels, the alias count); bench/ times it.
    assert elapsed < 10.0, f"{name} took {elapsed:.2f} s"


def test_python_tags_never_construct_anything(write, tmp_path):
    marker = tmp_path / "owned"
    path = write(f"network: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(SpecError):
        blockbuilder.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(("setting", "expected"), [
    ("train: {optimizer: {learning_rate: 0}}",
     "train.optimizer.learning_rate: expected a number greater than 0, got 0"),
    ("train: {epochs: 0}", "train.epochs: expected a positive integer, got 0"),
])
def test_a_zero_is_refused_in_the_words_of_the_fields_type(tmp_path, setting, expected):
    """A float field that must be above 0 said 'expected a positive integer' when given the integer 0."""
    path = tmp_path / "arch.yaml"
    path.write_text(f"input: [8, 8, 1]\nclasses: 2\nnetwork: [flatten, {{dense: 2}}]\n{setting}\n")
    with pytest.raises(SpecError) as caught:
        blockbuilder.load(path)
    assert str(caught.value).endswith(expected), str(caught.value)
