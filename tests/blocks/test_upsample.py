"""``upsample``: whole factors on height and width, nearest (each pixel repeated) or bilinear."""

from __future__ import annotations

import json

import numpy as np
import pytest

import blockbuilder


def _net(block: str, shape: str = "[4, 6, 2]") -> str:
    return f"input: {shape}\nnetwork:\n  - {block}\n"


def test_nearest_repeats_each_pixel_and_a_factor_of_one_builds_no_layer(write) -> None:
    arch = blockbuilder.load(write(_net("upsample: {size: [2, 3]}")))
    model = blockbuilder.build(arch)
    assert arch.output_shape == (8, 18, 2) == tuple(model.output.shape[1:])
    x = np.random.default_rng(0).random((1, 4, 6, 2), dtype="float32")
    np.testing.assert_array_equal(np.asarray(model(x)), x.repeat(2, axis=1).repeat(3, axis=2))
    plain = blockbuilder.build(blockbuilder.load(write(_net("upsample: 1"), "one.yaml")))
    assert [type(layer).__name__ for layer in plain.layers] == ["InputLayer"]


def test_bilinear_interpolates_between_the_pixels(write) -> None:
    text = _net("upsample: {size: 2, interpolation: bilinear}", "[1, 2, 1]")
    model = blockbuilder.build(blockbuilder.load(write(text)))
    x = np.array([[[[0.0], [1.0]]]], dtype="float32")
    row = np.asarray(model(x))[0, 0, :, 0]
    np.testing.assert_allclose(row, [0.0, 0.25, 0.75, 1.0])


@pytest.mark.parametrize("block, error", [
    ("upsample: 65", "network[0].upsample.size: input should be less than or equal to 64, got 65"),
    ("upsample: {size: 2, interpolation: cubic}", "network[0].upsample.interpolation:"),
])
def test_a_bad_factor_or_interpolation_is_one_line_at_its_place(write, block, error) -> None:
    path = write(_net(block))
    with pytest.raises(blockbuilder.SpecError) as caught:
        blockbuilder.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3:") and error in message and "\n" not in message, message


def test_on_a_flat_input_it_says_it_needs_an_image(write) -> None:
    path = write("input: [4, 4, 2]\nnetwork:\n  - flatten\n  - upsample: 2\n")
    with pytest.raises(blockbuilder.SpecError, match=r"network\[1\]: expects an image input"):
        blockbuilder.load(path)


def test_the_receptive_field_keeps_its_size_and_the_jump_shrinks(cli, write) -> None:
    text = _net("conv: {filters: 2, kernel: 3, stride: 2}\n  - upsample: 2\n  - conv: {filters: 2, kernel: 3}",
                "[8, 8, 1]")
    code, out, err = cli("summary", write(text), "--json")
    assert code == 0, err
    fields = [block["receptive_field"] for block in json.loads(out)["blocks"]]
    assert fields == [3, 3, 5]  # the conv after it sees 3 pixels a jump of 1 apart: 3 + 2 * 1
