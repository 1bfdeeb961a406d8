"""``blockbuilder draw``: diagrams from the YAML alone, as SVG, PNG and HTML."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

LENET = """
name: tiny
input: [16, 16, 1]
classes: 3
network:
  - conv: {filters: 4, kernel: 3}
    name: stem
  - residual:
      body:
        - conv: {filters: 4, kernel: 3}
        - conv: {filters: 8, kernel: 3}
      shortcut: projection
    name: skip
  - branch:
      paths:
        - [conv: {filters: 2, kernel: 1}]
        - [max_pool: {size: 3, stride: 1, padding: same}]
    name: fork
  - global_avg_pool
  - dense: {units: 3, activation: softmax}
"""


def _png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_svg_names_every_block_with_shapes_and_params(cli, write, tmp_path):
    code, out, err = cli("draw", write(LENET), "-o", tmp_path / "tiny.svg")
    assert (code, err) == (0, "")
    assert "wrote" in out
    svg = (tmp_path / "tiny.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    for text in ("tiny", "stem", "skip", "fork", "dense", "16×16×4", "16×16×8", "16×16×10", "conv 3×3, 8"):
        assert text in svg, text
    # the projection shortcut is drawn as its own box beside the body; the merges are marked
    assert "shortcut" in svg
    assert re.search(r">\s*\+\s*<", svg) and re.search(r">\s*C\s*<", svg)


def test_png_is_a_real_picture_that_grows_with_depth(cli, tmp_path):
    shallow, deep = tmp_path / "r1.png", tmp_path / "r3.png"
    assert cli("draw", "resnet20_cifar", "-o", shallow, "--depth", "1")[0] == 0
    assert cli("draw", "resnet20_cifar", "-o", deep, "--depth", "3")[0] == 0
    small, large = _png(shallow), _png(deep)
    assert small.shape[0] > 400 and small.shape[1] > 250
    assert large.shape[0] > 2 * small.shape[0]          # opened residual units take room
    assert small.std() > 20                              # not a blank page
    assert len(np.unique(large.reshape(-1, 3), axis=0)) > 50


def test_repeated_units_are_folded(tmp_path):
    import blockbuilder
    from blockbuilder.report.draw import render

    svg = render(blockbuilder.load("resnet50"), "svg", depth=2).decode()
    assert "×5" in svg and "×3" in svg and "×2" in svg   # stage 3 has 1 + 5 identical bottlenecks
    assert "bottleneck1" in svg and "bottleneck6" not in svg


def test_html_embeds_the_svg(cli, tmp_path):
    assert cli("draw", "googlenet", "-o", tmp_path / "g.html", "--depth", "1")[0] == 0
    page = (tmp_path / "g.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "inception4e" in page
    assert "<script" not in page and "http://" not in page.split("<svg", 1)[0]


@pytest.mark.parametrize("name", ["fractalnet20", "densenet_bc100_k12", "lenet5"])
def test_other_families_draw(name):
    import blockbuilder
    from blockbuilder.report.draw import render

    svg = render(blockbuilder.load(name), "svg", depth=3).decode()
    assert name in svg and svg.count("<text") > 20


def test_unknown_format_is_a_usage_error(cli, tmp_path):
    code, out, err = cli("draw", "lenet5", "-o", tmp_path / "x.gif")
    assert code == 2 and out == ""
    assert err.strip() == f"blockbuilder draw: error: cannot tell the format of '{tmp_path / 'x.gif'}': " \
                          "use a name ending in .svg, .png, .html"


def test_bad_depth_and_unknown_architecture(cli, tmp_path):
    code, _, err = cli("draw", "lenet5", "-o", tmp_path / "x.svg", "--depth", "0")
    assert code == 2 and "expected a positive integer" in err
    code, _, err = cli("draw", "resnet5O", "-o", tmp_path / "x.svg")
    assert code == 2 and "no file or zoo architecture called 'resnet5O'" in err and "Traceback" not in err


def test_bad_file_points_at_the_line(cli, write, tmp_path):
    bad = write("name: x\ninput: [8, 8, 1]\nclasses: 2\nnetwork:\n  - conv: {filters: -3}\n")
    code, _, err = cli("draw", bad, "-o", tmp_path / "x.svg")
    assert code == 1 and f"{bad}:5:" in err and not (tmp_path / "x.svg").exists()
