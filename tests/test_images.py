"""The one image reader: hostile or broken files are an ``ImageError`` naming the file, never a traceback."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from blockbuilder.errors import ImageError
from blockbuilder.images import MAX_PIXELS, Preprocessing, check_image, read_image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
GREY_8X8 = Preprocessing(height=8, width=8, channels=1)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int, depth: int = 8, colour: int = 0) -> bytes:
    """A PNG with a valid header and no pixels: 45 bytes that claim ``width``×``height``."""
    return SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)) + \
        chunk(b"IEND", b"")


def black_png(width: int, height: int) -> bytes:
    """A real, decodable 1-bit PNG of ``width``×``height`` black pixels (small on disk, huge decoded)."""
    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(1)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return png_header(width, height, depth=1)[:-12] + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


VALID = png_bytes(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))


def test_header_claiming_60000_squared_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(60000, 60000))
    assert path.stat().st_size == 45

    with pytest.raises(ImageError) as error:
        read_image(path, GREY_8X8)

    assert str(error.value) == f"{path}: image too large (3,600,000,000 pixels, at most 67,108,864)"


def test_a_real_20000_squared_png_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(black_png(20000, 20000))

    for read in (lambda: read_image(path, GREY_8X8), lambda: check_image(path)):
        with pytest.raises(ImageError, match=r"huge\.png: image too large \(400,000,000 pixels, at most 67,108,864\)$"):
            read()


def test_the_limit_is_the_pixel_count(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    path.write_bytes(black_png(300, 2))

    assert read_image(path, GREY_8X8, max_pixels=600).shape == (8, 8, 1)
    with pytest.raises(ImageError, match=r"wide\.png: image too large \(600 pixels, at most 599\)$"):
        read_image(path, GREY_8X8, max_pixels=599)
    assert MAX_PIXELS == 8192 * 8192


def test_errors_name_the_file_or_the_upload(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ImageError, match=rf"^{text}: cannot read image \(unknown image format\)$"):
        read_image(text, GREY_8X8)
    with pytest.raises(ImageError, match=r"^upload: cannot read image \(unknown image format\)$"):
        read_image(b"not an image", GREY_8X8, name="upload")
    with pytest.raises(ImageError, match=r"^upload: empty image$"):
        read_image(b"", GREY_8X8, name="upload")
    with pytest.raises(ImageError, match=rf"^{tmp_path / 'gone.png'}: cannot read image \(no such file"):
        read_image(tmp_path / "gone.png", GREY_8X8)


def test_truncated_png_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes(VALID[: len(VALID) // 2])

    with pytest.raises(ImageError, match=rf"^{path}: cannot read image \("):
        read_image(path, GREY_8X8)
    with pytest.raises(ImageError, match=rf"^{path}: cannot read image \("):
        check_image(path)


def test_preprocessing_from_an_export_and_from_a_shape() -> None:
    red = png_bytes(np.full((12, 16, 3), (255, 0, 0), dtype=np.uint8))
    entry = {"height": 8, "width": 8, "channels": 1, "scale": 1 / 255, "offset": 0.0, "range": [0.0, 1.0]}

    grey = read_image(red, Preprocessing.from_metadata(entry))
    rgb = read_image(red, Preprocessing.for_input((None, 8, 8, 3)))

    assert grey.shape == (8, 8, 1) and grey.dtype == np.float32
    np.testing.assert_allclose(grey, 76 / 255, atol=1 / 255)   # ITU-R 601 luma of pure red
    assert rgb.shape == (8, 8, 3)
    np.testing.assert_allclose(rgb[..., 0], 1.0)
    np.testing.assert_allclose(rgb[..., 1:], 0.0)


# -- property-based: whatever the bytes, an ImageError or a model input ---------------------------------


def outcome(data: bytes, preprocessing: Preprocessing = GREY_8X8) -> np.ndarray | None:
    """Read ``data``: the array, or ``None`` after an ``ImageError`` naming the upload. Anything else fails."""
    try:
        pixels = read_image(data, preprocessing, name="upload", max_pixels=4096 * 4096)
    except ImageError as error:
        assert str(error).startswith("upload: ") and "\n" not in str(error)
        return None
    assert pixels.dtype == np.float32 and pixels.shape == (8, 8, preprocessing.channels)
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0
    return pixels


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    outcome(data)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_after_a_png_signature(data: bytes) -> None:
    outcome(SIGNATURE + data)



@FUZZ
@given(st.integers(0, len(VALID)), st.sampled_from([1, 3]))
def test_truncated_pngs(cut: int, channels: int) -> None:
    pixels = outcome(VALID[:cut], Preprocessing(height=8, width=8, channels=channels))
    if cut < len(VALID) // 2:  # the end of the file may go (checksums, IEND); half of the pixels may not
        assert pixels is None


@FUZZ
@given(st.integers(0, len(VALID) - 1), st.integers(0, 255))
def test_one_corrupted_byte(position: int, value: int) -> None:
    data = bytearray(VALID)
    data[position] = value
    outcome(bytes(data))


@FUZZ
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 4, 8, 16]),
       st.sampled_from([0, 2, 3, 4, 6]))
def test_any_header_dimensions(width: int, height: int, depth: int, colour: int) -> None:
    pixels = outcome(png_header(width, height, depth, colour))
    assert pixels is None  # no pixel data: never an image


@FUZZ
@given(st.integers(1, 64), st.integers(1, 64), st.sampled_from(["L", "LA", "RGB", "RGBA", "P", "I;16", "1"]),
       st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]), st.sampled_from([1, 3]))
def test_real_images_of_any_size_mode_and_format(width: int, height: int, mode: str, fmt: str,
                                                 channels: int) -> None:
    image = Image.new(mode, (width, height))
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):  # not every format stores every mode
        return
    assert outcome(buffer.getvalue(), Preprocessing(height=8, width=8, channels=channels)) is not None


def encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


SEEDS = [encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "ICO", "PPM", "TGA")]
EDITS = st.lists(st.tuples(st.sampled_from(["set", "cut", "insert"]), st.floats(0, 1), st.binary(min_size=1,
                                                                                           max_size=8)),
                 min_size=1, max_size=4)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SEEDS), EDITS, st.sampled_from([1, 3]))
def test_damaged_files_of_every_format(seed: bytes, edits: list[tuple[str, float, bytes]], channels: int) -> None:
    data = bytearray(seed)
    for kind, where, payload in edits:
        at = int(where * len(data))
        if kind == "set":
            data[at: at + len(payload)] = payload
        elif kind == "cut":
            del data[at:]
        else:
            data[at:at] = payload
    outcome(bytes(data), Preprocessing(height=8, width=8, channels=channels))
