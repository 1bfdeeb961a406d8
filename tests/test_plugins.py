"""A block written in Python (examples/squeeze_excite.py) is used from YAML like a built-in."""

from __future__ import annotations

import runpy

import pytest

import blockbuilder
from conftest import REPO


@pytest.fixture(scope="module")
def se_example():
    return runpy.run_path(str(REPO / "examples" / "squeeze_excite.py"))


def test_custom_python_block_builds_from_yaml(se_example):
    arch = blockbuilder.load(REPO / "examples" / "se_resnet_cifar.yaml")
    model = blockbuilder.build(arch)
    summary = blockbuilder.summarize(arch, model)
    from blockbuilder.report.summary import estimate

    assert summary.params_total == model.count_params() == estimate(arch)[0]
    assert summary.depth == 20
    names = [layer.name for layer in model.layers]
    assert "repeat2.unit1.squeeze_excite1.reduce" in names
    se_block = summary.blocks[1].children[0].children[2]
    assert se_block.type == "squeeze_excite"
    assert se_block.params == 16 * 4 + 4 + 4 * 16 + 16


def test_custom_block_errors_point_at_the_file(se_example, write):
    path = write("input: [8, 8, 4]\nnetwork:\n  - squeeze_excite: {ratio: 8}\n")
    with pytest.raises(blockbuilder.SpecError) as caught:
        blockbuilder.load(path)
    assert str(caught.value) == f"{path}:3:5: network[0].squeeze_excite.ratio: ratio 8 leaves no channels of 4"


def test_names_cannot_be_taken_twice(se_example):
    with pytest.raises(ValueError, match="already registered"):
        @blockbuilder.register_block("conv")
        class Other(blockbuilder.Block):
            pass
