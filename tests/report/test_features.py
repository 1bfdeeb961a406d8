"""``blockbuilder features``: feature maps of every stage and the first layer's filters, one PNG."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def run_dir(lenet5_run):
    """A lenet5 run trained for one epoch on the embedded digits, through the CLI (shared, read-only)."""
    return lenet5_run


@pytest.fixture
def digit(tmp_path):
    """A real 3 from the digits data set, as a 32×32 grey PNG."""
    from PIL import Image
    from sklearn.datasets import load_digits

    path = tmp_path / "digit.png"
    pixels = (load_digits().images[3] / 16 * 255).astype("uint8")
    Image.fromarray(pixels).resize((32, 32), Image.Resampling.BILINEAR).save(path)
    return path


def test_one_png_with_every_stage(cli, run_dir, digit, tmp_path):
    from PIL import Image

    out = tmp_path / "features.png"
    code, stdout, err = cli("features", run_dir, "--image", digit, "-o", out)
    assert (code, err) == (0, "")
    assert "4 stages: conv1, max_pool1, conv2, max_pool2" in stdout
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("RGB")).astype(int)
    assert width == 900 and 850 < height < 1100      # 4 stages: 1 + 1 + 2 + 2 lines of 8 maps
    assert pixels.std() > 30 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200
    # viridis yellow (strong activations) and its dark purple both appear: maps are not flat
    assert (abs(pixels - [253, 231, 37]).sum(axis=-1) < 60).sum() > 50
    assert (abs(pixels - [68, 1, 84]).sum(axis=-1) < 40).sum() > 500


def test_stage_helpers(run_dir):
    import blockbuilder
    from blockbuilder.serving.features import filter_images, first_conv, stages

    model = blockbuilder.load_model(str(run_dir / "model.keras"))
    assert [s.name for s in stages(model)] == ["conv1", "max_pool1", "conv2", "max_pool2"]
    assert [tuple(s.layer.output.shape[1:]) for s in stages(model)][-1] == (5, 5, 16)
    conv = first_conv(model)
    filters = filter_images(np.asarray(conv.kernel))
    assert conv.name == "conv1" and len(filters) == 6 and filters[0].shape == (5, 5)
    assert all(f.min() == 0 and f.max() == 1 for f in filters)


def test_errors(cli, run_dir, digit, tmp_path):
    code, _, err = cli("features", tmp_path / "nope", "--image", digit, "-o", tmp_path / "f.png")
    assert code == 1 and err.startswith("blockbuilder features: error:") and "no such file" in err
    text = tmp_path / "not-an-image.png"
    text.write_text("hello")
    code, _, err = cli("features", run_dir, "--image", text, "-o", tmp_path / "f.png")
    assert code == 1 and "cannot read image" in err and "Traceback" not in err
    code, _, err = cli("features", run_dir, "--image", digit, "-o", tmp_path / "f.jpg")
    assert code == 2 and "--output must end in .png" in err
    assert not (tmp_path / "f.png").exists()


def test_the_one_image_reader_refuses_a_decompression_bomb(run_dir, tmp_path):
    import struct
    import zlib

    from blockbuilder.errors import ImageError
    from blockbuilder.serving.features import features

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))

    with pytest.raises(ImageError, match=rf"^{bomb}: image too large \(3,600,000,000 pixels, at most 67,108,864\)$"):
        features(run_dir, bomb, tmp_path / "f.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.png"]
