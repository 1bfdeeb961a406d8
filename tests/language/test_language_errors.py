"""Findings of outside testing on the language's errors: YAML 1.2 floats (``1e-5``) are numbers, a union
reports the member the value was meant for, a deep ``--set`` path and a FIFO are one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import blockbuilder
from blockbuilder.language.document import MAX_DEPTH

SMALL = """\
name: t
input: [8, 8, 1]
classes: 3
network:
  - conv: {filters: 4, kernel: 3, norm: {epsilon: EPS}}
  - batchnorm: {epsilon: EPS, momentum: 0.9}
  - global_avg_pool
train:
  epochs: 1
  optimizer: {name: sgd, learning_rate: LR}
"""


# -- 1. YAML 1.2 floats --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [("1e-5", 1e-5), ("1E-3", 1e-3), ("3e2", 300.0), ("2.5E+1", 25.0),
                                         ("1.0e5", 1e5), (".5e1", 5.0)])
def test_exponent_floats_are_numbers_in_a_file(cli, write, text: str, value: float) -> None:
    path = write(SMALL.replace("EPS", text).replace("LR", text))
    code, out, err = cli("validate", path)
    assert (code, err) == (0, ""), err
    arch = blockbuilder.load(path)
    network = arch.document["network"]
    assert network[0]["conv"]["norm"]["epsilon"] == value
    assert network[1]["batchnorm"]["epsilon"] == value
    assert arch.sections["train"].optimizer.learning_rate == value


def test_exponent_floats_are_numbers_in_set_and_search_choices(cli, write) -> None:
    path = write(SMALL.replace("EPS", "0.001").replace("LR", "0.1"))
    overrides = ["network[1].batchnorm.epsilon=1e-5", "train.optimizer.learning_rate=3E-4",
                 "network[0].conv.norm={epsilon: 2e-3}"]
    code, out, err = cli("validate", path, *[f"--set={o}" for o in overrides])
    assert (code, err) == (0, ""), err
    arch = blockbuilder.load(path, overrides)
    assert arch.document["network"][1]["batchnorm"]["epsilon"] == 1e-5
    assert arch.document["network"][0]["conv"]["norm"] == {"epsilon": 2e-3}
    assert arch.sections["train"].optimizer.learning_rate == 3e-4
    from blockbuilder.search.space import choice_value, value_text
    assert choice_value("[1e-4, 3e-4, 1e-3]") == [1e-4, 3e-4, 1e-3]
    assert choice_value(value_text("1e3")) == "1e3"  # text that reads as a number is written quoted


def test_resolve_writes_an_exponent_string_quoted(cli, write) -> None:
    path = write(SMALL.replace("EPS", "1e-5").replace("LR", "0.1") + 'meta: {code: "1e3"}\n')
    code, out, err = cli("resolve", path)
    assert (code, err) == (0, "")
    assert "code: '1e3'" in out and "epsilon: 1.0e-05" in out


@pytest.mark.parametrize("text", ["1e999", "-2E+400", "1.0e999"])
def test_a_float_too_large_is_one_located_line(text: str) -> None:
    with pytest.raises(blockbuilder.SpecError) as caught:
        blockbuilder.loads(SMALL.replace("EPS", "0.001").replace("LR", text), filename="arch.yaml")
    assert str(caught.value) == f"arch.yaml:10:41: number too large for a float: '{text}'"


@settings(max_examples=60, deadline=None)
@given(digits=st.integers(1, 9999), point=st.integers(0, 4), mark=st.sampled_from("eE"),
       exponent=st.integers(5, 12), plus=st.booleans(), where=st.sampled_from(["EPS", "LR", "MOMENTUM"]))
def test_generated_exponent_floats_always_parse_as_numbers(digits: int, point: int, mark: str, exponent: int,
                                                            plus: bool, where: str) -> None:
    """A float in exponent notation (``25e-6``, ``2.5E-5``, ``.25e-4``, ``+2.e-7``), anywhere a number in
    (0, 1) goes, reads as that number (YAML 1.2), whether or not it has a dot."""
    whole = str(digits)
    mantissa = f"{whole[:len(whole) - point]}.{whole[len(whole) - point:]}" if point else whole
    text = f"{'+' if plus else ''}{mantissa}{mark}-{exponent}"
    document = SMALL.replace("momentum: 0.9", "momentum: MOMENTUM").replace(where, text)
    for other in ("EPS", "LR", "MOMENTUM"):
        document = document.replace(other, "0.5")
    arch = blockbuilder.loads(document, filename="arch.yaml")
    found = {"EPS": arch.document["network"][1]["batchnorm"]["epsilon"],
             "LR": arch.sections["train"].optimizer.learning_rate,
             "MOMENTUM": arch.document["network"][1]["batchnorm"]["momentum"]}[where]
    assert isinstance(found, float) and found == float(text), (text, found)


# -- 2. unions report the member meant -----------------------------------------------------------------


def _error(text: str) -> str:
    document = f"name: t\ninput: [8, 8, 1]\nclasses: 3\nnetwork:\n  - conv: {{filters: 4, {text}}}\n"
    with pytest.raises(blockbuilder.SpecError) as caught:
        blockbuilder.loads(document, filename="arch.yaml")
    return str(caught.value)


@pytest.mark.parametrize("text, message", [
    ("norm: {momentun: 0.9}",
     "arch.yaml:5:31: network[0].conv.norm.momentun: unknown key 'momentun' (did you mean 'momentum'?)"),
    ("norm: {momentum: x}", "arch.yaml:5:41: network[0].conv.norm.momentum: expected a number, got 'x'"),
    ("norm: batchnrom", "arch.yaml:5:30: network[0].conv.norm: expected one of 'none' or 'batchnorm', "
                        "got 'batchnrom' (did you mean 'batchnorm'?)"),
    ("norm: 3", "arch.yaml:5:30: network[0].conv.norm: expected one of 'none' or 'batchnorm', got 3"),
    ("padding: sme", "arch.yaml:5:33: network[0].conv.padding: expected one of 'same' or 'valid', "
                     "got 'sme' (did you mean 'same'?)"),
    ("padding: -1", "arch.yaml:5:33: network[0].conv.padding: input should be greater than or equal to 0, got -1"),
    ("padding: 1.5", "arch.yaml:5:33: network[0].conv.padding: expected an integer, got 1.5"),
    ("padding: [1, -2]", "arch.yaml:5:37: network[0].conv.padding[1]: input should be greater than or equal to 0, "
                         "got -2"),
    ("padding: [[1, 2], [3, x]]", "arch.yaml:5:46: network[0].conv.padding[1][1]: expected an integer, got 'x'"),
    ("kernel: [3, 0]", "arch.yaml:5:36: network[0].conv.kernel[1]: expected a number greater than 0, got 0"),
    ("activation: rleu", "arch.yaml:5:36: network[0].conv.activation: expected one of 'none', 'linear'"),
])
def test_a_union_reports_the_member_meant(text: str, message: str) -> None:
    got = _error(text)
    assert got.startswith(message), got
    assert "Spec" not in got and "constrained" not in got and "tuple[" not in got, got


@pytest.mark.parametrize("block, message", [
    ("rescaling: {scale: [0.5, x, 0.5]}", "arch.yaml:4:30: network[0].rescaling.scale[1]: expected a number, got 'x'"),
    ("inverted_residual: {filters: 8, expand: 2, se: {ratoi: 0.25}}",
     "arch.yaml:4:53: network[0].inverted_residual.se.ratoi: unknown key 'ratoi' (did you mean 'ratio'?)"),
])
def test_a_part_of_a_union_or_an_optional_mapping_is_named(block: str, message: str) -> None:
    with pytest.raises(blockbuilder.SpecError) as caught:
        blockbuilder.loads(f"name: t\ninput: [8, 8, 3]\nnetwork:\n  - {block}\n", filename="arch.yaml")
    assert str(caught.value) == message


# -- 3. a deep --set path ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["resolve", "validate", "summary"])
@pytest.mark.parametrize("path", [".".join(["a"] * 2000), "network[0]" + "[0]" * 2000, "meta" + ".a" * 70])
def test_a_set_path_deeper_than_the_nesting_budget_is_one_usage_line(cli, write, command: str, path: str) -> None:
    file = write(SMALL.replace("EPS", "0.001").replace("LR", "0.1"))
    code, out, err = cli(command, file, "--set", f"{path}=1")
    assert code == 2 and "Traceback" not in err, err[-500:]
    assert err == f"blockbuilder {command}: error: --set '{path[:36]}...: nests deeper than {MAX_DEPTH} levels\n"


def test_a_set_path_within_the_budget_still_works(cli, write) -> None:
    file = write(SMALL.replace("EPS", "0.001").replace("LR", "0.1"))
    code, out, err = cli("resolve", file, "--set", "meta" + ".a" * (MAX_DEPTH - 1) + "=1")
    assert (code, err) == (0, "")


# -- 4. a FIFO as the architecture -----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "resolve"])
def test_a_fifo_architecture_is_named_as_one(cli, tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "arch.yaml"
    os.mkfifo(fifo)
    code, out, err = cli(command, fifo)
    assert (code, err) == (2, f"blockbuilder {command}: error: {fifo}: a named pipe (FIFO), not a file\n")


def test_a_fifo_named_by_extends_is_named_as_one_at_its_line(cli, write, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "base.yaml")
    path = write("extends: base.yaml\nname: t\n")
    code, out, err = cli("validate", path)
    assert (code, err) == (1, f"{path}:1:10: extends: {tmp_path / 'base.yaml'}: a named pipe (FIFO), not a file\n")
