"""Predict: top-k classes from a SavedModel, a .keras file, a run directory, ONNX and LiteRT files."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blockbuilder.errors import ImageError
from blockbuilder.images import Preprocessing, read_image
from blockbuilder.serving.export import export_model
from blockbuilder.serving.predict import as_probabilities, predict, print_predictions
from blockbuilder.serving.source import ExportError

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["cat", "dog", "bird"]
GREY_8X8 = {"height": 8, "width": 8, "channels": 1, "scale": 1 / 255, "offset": 0.0, "range": [0.0, 1.0]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """A run directory and its exports, with class names from ``metrics.json``."""
    import keras

    root = tmp_path_factory.mktemp("predict")
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    run = root / "runs" / "tiny"
    run.mkdir(parents=True)
    model.save(run / "model.keras")
    (run / "metrics.json").write_text(json.dumps({"class_names": CLASSES}))
    paths = {"run": run, "keras_file": run / "model.keras"}
    paths["savedmodel"] = export_model(run, "savedmodel", root / "exp" / "tiny").path
    paths["keras"] = export_model(run, "keras", root / "exp" / "copy").path
    if importlib.util.find_spec("tf2onnx") and importlib.util.find_spec("onnxruntime"):
        paths["onnx"] = export_model(run, "onnx", root / "exp" / "tiny").path
    if importlib.util.find_spec("ai_edge_litert"):
        paths["litert"] = export_model(run, "litert", root / "exp" / "tiny").path
    return paths


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    """Two RGB images of another size (16x12) and one grey 8x8 image."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        path = root / f"rgb{i}.png"
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / "grey.png")
    return [*paths, root / "grey.png"]


FORMS = ["run", "keras_file", "savedmodel", "keras", "onnx", "litert"]


@pytest.mark.parametrize("form", FORMS)
def test_every_model_form_gives_the_same_top_classes(exported, images, form: str) -> None:
    if form not in exported:
        pytest.skip(f"the '{form}' extra is not installed")
    reference = predict(exported["run"], images, top=3)

    predictions = predict(exported[form], images, top=3)

    for got, want in zip(predictions, reference):
        assert [name for name, _ in got.top] == [name for name, _ in want.top]
        np.testing.assert_allclose([p for _, p in got.top], [p for _, p in want.top], atol=1e-5)
        assert {name for name, _ in got.top} == set(CLASSES)


def test_images_are_prepared_like_training(tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    Image.new("RGB", (16, 12), (255, 0, 0)).save(path)

    pixels = read_image(path, Preprocessing.from_metadata(GREY_8X8))

    assert pixels.shape == (8, 8, 1) and pixels.dtype == np.float32
    np.testing.assert_allclose(pixels, 76 / 255, atol=1 / 255)  # ITU-R 601 luma of pure red


def test_grey_image_becomes_rgb_for_an_rgb_model(images) -> None:
    pixels = read_image(images[2], Preprocessing.from_metadata({**GREY_8X8, "channels": 3}))

    assert pixels.shape == (8, 8, 3)
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0


def test_logits_become_probabilities() -> None:
    probabilities = as_probabilities(np.array([[2.0, 0.0, -1.0]], dtype=np.float32))

    np.testing.assert_allclose(probabilities.sum(), 1.0, rtol=1e-6)
    assert probabilities.argmax() == 0


def test_a_bfloat16_softmax_becomes_probabilities_that_sum_to_one() -> None:
    """A mixed_bfloat16 model's softmax (three significant digits) sums to 1.002; in bfloat16 that is 1.0."""
    import ml_dtypes

    row = np.array([[0.5, 0.25, 0.127, 0.125]], dtype=np.float32).astype(ml_dtypes.bfloat16)
    assert float(np.asarray(row, dtype=np.float64).sum()) == 1.001953125 and float(row.sum()) == 1.0

    probabilities = as_probabilities(row)

    assert abs(sum(round(float(p), 5) for p in probabilities[0]) - 1.0) < 1e-4
    assert list(np.argsort(-probabilities[0])) == [0, 1, 2, 3]


def test_savedmodel_predict_needs_no_blockbuilder_layers(exported, images) -> None:
    script = (
        "import sys\n"
        "from blockbuilder.serving.predict import predict\n"
        f"print(predict({str(exported['savedmodel'])!r}, [{str(images[0])!r}], top=1)[0].top[0][0])\n"
        "assert 'blockbuilder.compiler.layers' not in sys.modules\n"
        "assert 'blockbuilder.compiler.compile' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in CLASSES


def test_cli_prints_one_plain_line_per_image(cli, exported, images) -> None:
    code, out, err = cli("predict", exported["savedmodel"], *images[:2], "--top", "2")

    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    for line, image in zip(lines, images):
        head, _, ranked = line.partition(": ")
        assert head == str(image)
        pairs = [item.rsplit(" ", 1) for item in ranked.split(", ")]
        assert len(pairs) == 2 and all(name in CLASSES for name, _ in pairs)
        probabilities = [float(p) for _, p in pairs]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001


def test_rich_table_on_a_terminal(exported, images) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    print_predictions(predict(exported["savedmodel"], images[:1], top=3), stream)

    text = stream.getvalue()
    assert "probability" in text and all(name in text for name in CLASSES)


def test_cli_unreadable_image_exit_1(cli, exported, tmp_path: Path) -> None:
    fake = tmp_path / "digit.png"
    fake.write_text("not an image")

    code, out, err = cli("predict", exported["savedmodel"], fake)

    assert code == 1 and out == ""
    assert err.startswith(f"blockbuilder predict: error: {fake}: cannot read image (")
    assert err.count("\n") == 1


def test_cli_not_a_model_exit_1(cli, images, tmp_path: Path) -> None:
    code, _, err = cli("predict", tmp_path, images[0])

    assert code == 1
    assert err == f"blockbuilder predict: error: {tmp_path}: not a model (a run directory must contain model.keras)\n"


def test_top_must_be_positive(exported, images) -> None:
    with pytest.raises(ExportError, match="--top must be at least 1"):
        predict(exported["savedmodel"], images, top=0)


# --------------------------------------------------------------------------- hostile files


@pytest.fixture
def damaged(exported, tmp_path: Path):
    """``damaged(text)``: a copy of the SavedModel whose ``assets/blockbuilder.json`` holds ``text``."""

    def _damaged(text: str | bytes) -> Path:
        copy = tmp_path / "damaged"
        shutil.copytree(exported["savedmodel"], copy)
        metadata = copy / "assets" / "blockbuilder.json"
        metadata.write_bytes(text if isinstance(text, bytes) else text.encode())
        return copy

    return _damaged


def _metadata(exported, **changes) -> str:
    data = json.loads((exported["savedmodel"] / "assets" / "blockbuilder.json").read_text())
    return json.dumps({**data, **changes})


@pytest.mark.parametrize(("text", "problem"), [
    ("{not json", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (b"\xff\xfe\x00garbage", "not JSON: "),
    ("[1, 2, 3]", "the top level: input should be a valid dictionary"),
    ("[" * 100000, "not JSON: maximum recursion depth exceeded"),
    ({"class_names": "cat"}, "class_names: input should be a valid list"),
    ({"class_names": ["cat", "dog"]}, "2 class names for a model with 3 outputs"),
    ({"preprocessing": {"height": "8"}}, "preprocessing.height: input should be a valid integer"),
    ({"preprocessing": {"height": 16, "width": 16, "channels": 1}},
     "preprocessing gives [16, 16, 1] but the model takes [8, 8, 1]"),
    ({"preprocessing": {"scale": float("nan")}}, "preprocessing.scale: input should be a finite number"),
    ({"input": {"name": "x", "shape": [None, 9, 9, 1]}}, "input shape [None, 9, 9, 1] but the model takes"),
], ids=["not-json", "not-utf8", "a-list", "deep", "names-a-string", "two-names", "height-string", "wrong-size",
        "nan-scale", "wrong-shape"])
def test_damaged_savedmodel_metadata_is_one_line(damaged, exported, images, cli, text, problem: str) -> None:
    path = damaged(_metadata(exported, **text) if isinstance(text, dict) else text)
    where = path / "assets" / "blockbuilder.json"

    with pytest.raises(ExportError) as error:
        predict(path, images[:1])
    code, out, err = cli("predict", path, images[0])

    assert str(error.value).startswith(f"{where}: damaged metadata (") and problem in str(error.value)
    assert (code, out, err) == (1, "", f"blockbuilder predict: error: {error.value}\n")


def test_damaged_metadata_of_other_forms(exported, images, tmp_path: Path) -> None:
    import zipfile

    keras_copy = tmp_path / "copy.keras"
    with zipfile.ZipFile(exported["keras"]) as source, zipfile.ZipFile(keras_copy, "w") as archive:
        for entry in source.namelist():
            data = source.read(entry)
            archive.writestr(entry, b"{not json" if entry == "blockbuilder.json" else data)
    forms = [(keras_copy, f"{keras_copy}:blockbuilder.json: damaged metadata (not JSON")]
    if "litert" in exported:
        tflite = tmp_path / "tiny.tflite"
        shutil.copy(exported["litert"], tflite)
        (tmp_path / "tiny.blockbuilder.json").write_text('{"input": 7}')
        forms.append((tflite, f"{tmp_path / 'tiny.blockbuilder.json'}: damaged metadata (input: "))

    for path, start in forms:
        with pytest.raises(ExportError) as error:
            predict(path, images[:1])
        assert str(error.value).startswith(start), str(error.value)


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
        chunk(b"IEND", b"")


def test_a_decompression_bomb_is_one_line_naming_the_file(exported, images, cli, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(60000, 60000))

    with pytest.raises(ImageError, match=rf"^{bomb}: image too large \(3,600,000,000 pixels, at most 67,108,864\)$"):
        predict(exported["savedmodel"], [images[0], bomb])
    code, out, err = cli("predict", exported["keras_file"], images[0], bomb)

    assert (code, out) == (1, "")
    assert err == f"blockbuilder predict: error: {bomb}: image too large (3,600,000,000 pixels, at most 67,108,864)\n"
