"""Images are served exactly as trained: training's readers and predict, explore and embed see the same arrays.

The same files (8-bit grey and RGB, 16-bit grey and RGB PNG, float TIFF, RGBA PNG, palette PNG with a
transparent entry, 1-bit BMP, CMYK JPEG, RGB JPEG, GIF) are read through both training pipelines (the
``tf.data`` one of TensorFlow, the NumPy one of JAX and PyTorch) and through ``predict``, ``explore``
and ``embed``: the arrays are equal, and they hold the values the files hold (16-bit by 65535, floats
as they are, alpha dropped).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blockbuilder.images import Preprocessing, read_image

SIZE = (12, 10)          # width, height of every file: not the model's, so the resize is compared too
MODEL = (8, 8)           # the model's input height, width
RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
GREY = RNG.integers(0, 256, (SIZE[1], SIZE[0]), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, (SIZE[1], SIZE[0]), dtype=np.uint16)
GREY16[0, 0] = 32768
RGB16 = RNG.integers(0, 65536, (SIZE[1], SIZE[0], 3), dtype=np.uint16)
FLOATS = RNG.random((SIZE[1], SIZE[0]), dtype=np.float32)
FLOATS[0, 0] = 0.5
RGBA = RNG.integers(0, 256, (SIZE[1], SIZE[0], 4), dtype=np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png16_rgb(pixels: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (Pillow cannot write one)."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))


def _saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _palette() -> Image.Image:
    image = Image.fromarray(RGB).quantize(16)
    image.info["transparency"] = 0
    return image


FILES = {
    "grey8.png": lambda: _saved(Image.fromarray(GREY), "PNG"),
    "rgb8.png": lambda: _saved(Image.fromarray(RGB), "PNG"),
    "grey16.png": lambda: _saved(Image.fromarray(GREY16), "PNG"),
    "rgb16.png": lambda: png16_rgb(RGB16),
    "float.tif": lambda: _saved(Image.fromarray(FLOATS), "TIFF"),
    "rgba.png": lambda: _saved(Image.fromarray(RGBA), "PNG"),
    "palette.png": lambda: _saved(_palette(), "PNG", transparency=0),
    "bits.bmp": lambda: _saved(Image.fromarray(GREY > 127), "BMP"),
    "cmyk.jpg": lambda: _saved(Image.fromarray(RGB).convert("CMYK"), "JPEG", quality=95),
    "rgb.jpg": lambda: _saved(Image.fromarray(RGB), "JPEG", quality=95),
    "frames.gif": lambda: _saved(Image.fromarray(RGB).quantize(64), "GIF"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("formats")
    paths = []
    for name, make in FILES.items():
        path = folder / name
        path.write_bytes(make())
        paths.append(path)
    return paths


def _model(channels: int):
    """Input (8, 8, channels) -> Flatten ``flat`` -> a softmax of 2: ``flat`` shows the input itself."""
    import keras

    inputs = keras.Input((*MODEL, channels), name="input")
    flat = keras.layers.Flatten(name="flat")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="head")(flat), name="probe")


def training(files: list[Path], shape: tuple[int, int, int]) -> np.ndarray:
    """The images as training reads them: the input pipeline every backend trains from."""
    from blockbuilder.training.pipeline import Examples

    examples = Examples(np.zeros(len(files), np.int64), files=np.asarray([str(f) for f in files]), shape=shape)
    return examples.gather(np.arange(len(files)))


def served_predict(files: list[Path], model, monkeypatch) -> np.ndarray:
    from blockbuilder.serving import loaders, predict

    seen = []

    def recording(export_or_model):
        loaded = loaders.load_model(export_or_model)
        return loaders.LoadedModel(lambda batch: (seen.append(batch), loaded.forward(batch))[1], loaded.metadata)

    monkeypatch.setattr(predict, "load_model", recording)
    predict.predict(model, files)
    return np.asarray(seen[0])


def served_explore(files: list[Path], model) -> np.ndarray:
    from blockbuilder.serving.explore import Explorer
    from blockbuilder.serving.source import ModelSource

    explorer = Explorer(ModelSource(model, None, class_names=["a", "b"]))
    probe, seen = explorer.probe, []
    explorer.probe = lambda batch, training: (seen.append(batch), probe(batch, training=training))[1]
    for path in files:
        explorer.answer(path.read_bytes())
    return np.concatenate(seen)


def served_embed(files: list[Path], model) -> np.ndarray:
    from blockbuilder.transfer.embed import embed

    return embed(model, files, block="flat", how="none").reshape(len(files), *MODEL, -1)


@pytest.mark.parametrize("channels", [1, 3], ids=["grey-model", "rgb-model"])
def test_training_and_serving_read_every_format_alike(files, channels, monkeypatch) -> None:
    shape = (*MODEL, channels)
    model = _model(channels)
    trained = training(files, shape)
    readers = {"predict": served_predict(files, model, monkeypatch),
               "explore": served_explore(files, model), "embed": served_embed(files, model)}

    assert trained.shape == (len(files), *shape)
    for reader, arrays in readers.items():
        for index, path in enumerate(files):
            difference = float(np.abs(arrays[index] - trained[index]).max())
            assert difference <= 1e-6, f"{reader} reads {path.name} unlike training (by {difference:.4f})"


def test_the_values_are_the_files_own(files) -> None:
    """16-bit by 65535, float as it is, alpha dropped (as training and tf.image do), palette and 1-bit."""
    channels = {name: 1 if name.startswith(("grey", "float", "bits")) else 3 for name in FILES}
    read = {path.name: read_image(path, Preprocessing(channels=channels[path.name])) for path in files}

    np.testing.assert_allclose(read["grey16.png"][..., 0], GREY16 / 65535, atol=1e-6)
    assert read["grey16.png"][0, 0, 0] == pytest.approx(32768 / 65535)
    np.testing.assert_allclose(read["rgb16.png"], RGB16 / 65535, atol=1 / 255)   # Pillow keeps 8 of its 16 bits
    np.testing.assert_allclose(read["float.tif"][..., 0], FLOATS, atol=1e-7)
    assert read["float.tif"][0, 0, 0] == 0.5
    np.testing.assert_array_equal(read["rgba.png"] * 255, RGBA[..., :3])
    np.testing.assert_array_equal(read["palette.png"] * 255, np.asarray(_palette().convert("RGB")))
    np.testing.assert_array_equal(read["bits.bmp"][..., 0], (GREY > 127).astype(np.float32))
    np.testing.assert_allclose(read["cmyk.jpg"], RGB / 255, atol=0.2)             # lossy, but the picture
    assert {name: decode_channels(path) for name, path in zip(FILES, files)} == channels


def decode_channels(path: Path) -> int:
    from blockbuilder.images import decode

    return int(decode(path).shape[-1])


def test_resizing_is_tf_image_resize_antialiased() -> None:
    """What the export's metadata promises: bilinear, antialiased, in float (not on 8-bit values)."""
    import tensorflow as tf

    data = _saved(Image.fromarray(RGB), "PNG")
    for height, width in [(8, 8), (32, 40), (5, 11)]:
        read = read_image(data, Preprocessing(height=height, width=width, channels=3))
        expected = tf.image.resize(RGB.astype(np.float32) / 255, (height, width), antialias=True).numpy()
        np.testing.assert_allclose(read, np.clip(expected, 0, 1), atol=1e-5)


def test_embed_prints_no_warning(cli, files, tmp_path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = cli("embed", "lenet5", files[0], files[1], "--block", "conv1", "-o", tmp_path / "e.npy")

    assert (code, err) == (0, "")
    assert out.startswith("wrote ")
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


def test_a_folder_of_tiff_and_webp_images_is_read_as_predict_reads_them(tmp_path: Path) -> None:
    """Every format predict reads is an image of a ``folder:`` too (.tif, .tiff and .webp were skipped)."""
    from blockbuilder.training import sources

    for label, value in (("dark", 40), ("light", 220)):
        (tmp_path / label).mkdir()
        for k, suffix in enumerate((".tif", ".tiff", ".webp", ".png")):
            Image.new("L", (8, 8), value).save(tmp_path / label / f"{k}{suffix}")
    found = sources.read_source(f"folder:{tmp_path}", shape=(8, 8, 1))
    assert found.class_names == ["dark", "light"] and len(found.parts["train"].labels) == 8


def test_a_uint16_npz_is_read_as_a_16_bit_png_is() -> None:
    from blockbuilder.training.sources import images_array

    x = np.array([[[0, 32768], [65535, 16384]]], np.uint16)
    assert np.allclose(images_array(x, "npz:x.npz")[..., 0], x / 65535.0)
    assert np.allclose(images_array(x.astype(np.uint8), "npz:x.npz")[..., 0], x.astype(np.uint8) / 255.0)
