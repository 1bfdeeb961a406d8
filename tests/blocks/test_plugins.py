"""A block written in Python (examples/squeeze_excite.py) is used from YAML like a built-in; from the
command line with --plugin, and from an installed package through its entry point."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

import blockbuilder
from conftest import REPO, run_process


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


# --------------------------------------------------------------------------- plugins from the command line

PLUGIN = '''
from typing import Any

from blockbuilder import Block, BlockSpec, register_block


class HalveSpec(BlockSpec):
    pass


@register_block("halve")
class Halve(Block[HalveSpec]):
    """Multiplies its input by 0.5."""

    Spec = HalveSpec

    def infer(self, spec, shape, site):
        return shape

    def build(self, node, x, ctx: Any) -> Any:
        return ctx.layers.Rescaling(0.5, name=node.path)(x)
'''
USES_IT = "name: halved\ninput: [8, 8, 3]\nclasses: 2\nnetwork:\n  - halve\n  - global_avg_pool: {}\n  - dense: 2\n"


@pytest.fixture
def plugin_files(tmp_path: Path) -> Path:
    (tmp_path / "halve_blocks.py").write_text(PLUGIN)
    (tmp_path / "halved.yaml").write_text(USES_IT)
    return tmp_path


def test_a_plugin_file_or_module_registers_blocks_for_any_command(plugin_files: Path) -> None:
    arch = str(plugin_files / "halved.yaml")
    done = run_process("validate", arch, cwd=plugin_files)
    assert done.returncode == 1 and "unknown block type 'halve'" in done.stderr
    for plugin in (str(plugin_files / "halve_blocks.py"), "halve_blocks"):  # a file; a module of the folder
        done = run_process("validate", arch, "--plugin", plugin, cwd=plugin_files)
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        assert done.stdout.startswith("halved: ok (input [8, 8, 3] -> output [2], depth 1, 8 params")
    done = run_process("summary", arch, "--json", "--plugin", "halve_blocks", cwd=plugin_files)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [block["type"] for block in json.loads(done.stdout)["blocks"]] == ["halve", "global_avg_pool", "dense"]


def test_a_plugin_that_is_missing_or_fails_is_one_line(plugin_files: Path) -> None:
    (plugin_files / "broken_blocks.py").write_text("import math\n\nraise RuntimeError('no GPU here')\n")
    cases = {
        "nosuch_blocks": "blockbuilder validate: error: --plugin 'nosuch_blocks': no module named 'nosuch_blocks' "
                         "(a module name found from the current folder or sys.path, or a .py file)\n",
        "missing.py": "blockbuilder validate: error: --plugin 'missing.py': no such file\n",
        "broken_blocks": "blockbuilder validate: error: --plugin 'broken_blocks' failed while importing: "
                         f"RuntimeError: no GPU here ({plugin_files / 'broken_blocks.py'}:3)\n",
    }
    for plugin, message in cases.items():
        done = run_process("validate", "lenet5", "--plugin", plugin, cwd=plugin_files)
        assert (done.returncode, done.stdout, done.stderr) == (2, "", message)


def test_an_installed_package_registers_blocks_through_its_entry_point(plugin_files: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "halve_pkg.py").write_text(PLUGIN)
    info = site / "halve_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: halve-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[blockbuilder.blocks]\nhalve = halve_pkg\n")
    done = run_process("validate", str(plugin_files / "halved.yaml"), env={"PYTHONPATH": str(site)})
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout.startswith("halved: ok")


@pytest.mark.parametrize("key", ["plugin", "plugins"])
def test_a_file_cannot_name_a_plugin_only_the_command_line_can(plugin_files: Path, key: str) -> None:
    """A YAML file never runs code: naming a module in it is an unknown key, and the module is not imported."""
    (plugin_files / "marker_blocks.py").write_text("open('imported', 'w').write('yes')\n")
    (plugin_files / "names_it.yaml").write_text(f"{key}: marker_blocks\n{USES_IT.replace('  - halve', '  - identity')}")
    done = run_process("validate", "names_it.yaml", cwd=plugin_files)
    assert done.returncode == 1 and f"{key}: unknown" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (plugin_files / "imported").exists()
