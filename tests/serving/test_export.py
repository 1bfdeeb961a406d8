"""Export: each format round-trips with a numeric parity check; metadata, atomic writes, CLI errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from blockbuilder.errors import CommandError
from blockbuilder.serving import export as export_module
from blockbuilder.serving.export import export_model
from blockbuilder.serving.parity import random_inputs
from blockbuilder.serving.source import ExportError

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["cat", "dog", "bird"]
RESOLVED = "name: tiny\ninput: [8, 8, 1]\nclasses: 3\n"
needs_onnx = pytest.mark.skipif(
    not (importlib.util.find_spec("tf2onnx") and importlib.util.find_spec("onnxruntime")),
    reason="the 'onnx' extra (tf2onnx, onnxruntime) is not installed",
)
needs_litert = pytest.mark.skipif(
    importlib.util.find_spec("ai_edge_litert") is None, reason="the 'litert' extra (ai-edge-litert) is not installed"
)

TINY_MODEL_SOURCE = """
import keras

inputs = keras.Input((8, 8, 1), name="image")
x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x), name="tiny")
"""


def tiny_model():
    """A conv (4 filters) on 8x8x1 input, softmax over 3 classes."""
    scope: dict = {}
    exec(TINY_MODEL_SOURCE, scope)  # the same source builds the model in the JAX subprocess below
    return scope["model"]


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture
def run_dir(tmp_path: Path, model) -> Path:
    """A run directory as training writes it."""
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    model.save(run / "model.keras")
    (run / "resolved.yaml").write_text(RESOLVED)
    (run / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5, "class_names": CLASSES}))
    return run


def leftovers(folder: Path) -> list[str]:
    """Temporary folders an export left behind (``atomic_path`` stages in ``.NAME.XXXXXX`` beside the target)."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def hide(monkeypatch, module: str) -> None:
    """Make ``module`` look not installed to ``importlib.util.find_spec``."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    command = [sys.executable, "-m", "blockbuilder", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)


# --------------------------------------------------------------------------- SavedModel


def with_custom_layer(model):
    """The tiny model with one of blockbuilder's own layers, which the SavedModel must not need."""
    import keras

    from blockbuilder.compiler.layers import ScaledTanh

    x = ScaledTanh(name="lecun")(model.get_layer("conv").output)
    x = model.get_layer("pool")(x)
    return keras.Model(model.inputs, model.get_layer("head")(x), name="tiny_custom")


def test_savedmodel_round_trip_has_signature_metadata_and_parity(run_dir: Path, tmp_path: Path) -> None:
    import tensorflow as tf

    model = with_custom_layer(tiny_model())
    model.save(run_dir / "model.keras")  # replaces the plain model: the fresh process cannot import blockbuilder
    result = export_model(run_dir, "savedmodel", tmp_path / "exported" / "tiny", verify=True)

    assert result.path == tmp_path / "exported" / "tiny"
    assert result.samples == 8 and 0.0 <= result.max_abs_diff <= 1e-4
    signature = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    (name, spec), = signature.structured_input_signature[1].items()
    assert name == "image" and spec.shape.as_list() == [None, 8, 8, 1] and spec.dtype == tf.float32
    for batch in (1, 5):  # dynamic batch dimension
        x = random_inputs({"shape": [None, 8, 8, 1]}, batch, seed=batch)
        served = signature(image=tf.constant(x))["output_0"].numpy()
        np.testing.assert_allclose(served, model.predict(x, verbose=0), atol=1e-5)
    assert leftovers(result.path.parent) == []


def test_savedmodel_metadata_describes_the_run(run_dir: Path, tmp_path: Path) -> None:
    import blockbuilder

    result = export_model(run_dir / "model.keras", "savedmodel", tmp_path / "tiny")

    metadata = json.loads((result.path / "assets" / "blockbuilder.json").read_text())
    assert metadata == result.metadata
    assert metadata["class_names"] == CLASSES
    assert metadata["resolved_yaml"] == RESOLVED
    assert (result.path / "assets" / "resolved.yaml").read_text() == RESOLVED
    assert metadata["input"] == {"name": "image", "shape": [None, 8, 8, 1], "dtype": "float32"}
    assert metadata["preprocessing"]["scale"] == pytest.approx(1 / 255)
    assert metadata["preprocessing"]["range"] == [0.0, 1.0]
    assert metadata["preprocessing"]["color_mode"] == "grayscale"
    assert metadata["blockbuilder_version"] == blockbuilder.__version__
    assert metadata["signature"] == "serving_default"


def test_class_names_default_to_indices_without_a_run_dir(tmp_path: Path, model) -> None:
    result = export_model(model, "savedmodel", tmp_path / "tiny")

    assert result.metadata["class_names"] == ["0", "1", "2"]
    assert result.metadata["resolved_yaml"] is None


def test_model_saved_under_jax_exports_with_tensorflow(tmp_path: Path) -> None:
    saved = tmp_path / "jax" / "model.keras"
    script = TINY_MODEL_SOURCE + textwrap.dedent(f"""
        import numpy as np
        assert keras.backend.backend() == "jax"
        model.save({str(saved)!r})
        np.save({str(tmp_path / "x.npy")!r}, np.random.default_rng(1).random((4, 8, 8, 1), dtype=np.float32))
        np.save({str(tmp_path / "y.npy")!r}, np.asarray(model.predict(np.load({str(tmp_path / "x.npy")!r}), verbose=0)))
    """)
    saved.parent.mkdir()
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "KERAS_BACKEND": "jax"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    result = export_model(saved.parent, "savedmodel", tmp_path / "served")

    import tensorflow as tf

    signature = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    served = signature(image=tf.constant(np.load(tmp_path / "x.npy")))["output_0"].numpy()
    np.testing.assert_allclose(served, np.load(tmp_path / "y.npy"), atol=1e-5)


# --------------------------------------------------------------------------- other formats


def test_keras_round_trip_embeds_metadata(run_dir: Path, tmp_path: Path, model) -> None:
    import keras

    result = export_model(run_dir, "keras", tmp_path / "tiny")

    assert result.path == tmp_path / "tiny.keras"
    with zipfile.ZipFile(result.path) as archive:
        assert json.loads(archive.read("blockbuilder.json"))["class_names"] == CLASSES
    x = random_inputs(result.metadata["input"], 4)
    reloaded = keras.saving.load_model(result.path, compile=False)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@needs_onnx
def test_onnx_round_trip_parity_and_metadata(run_dir: Path, tmp_path: Path, model) -> None:
    import onnxruntime

    result = export_model(run_dir, "onnx", tmp_path / "tiny", verify=True, samples=16)

    assert result.path.suffix == ".onnx" and result.max_abs_diff <= 1e-5
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert json.loads(session.get_modelmeta().custom_metadata_map["blockbuilder"])["class_names"] == CLASSES
    x = random_inputs(result.metadata["input"], 3, seed=7)
    np.testing.assert_allclose(session.run(None, {"image": x})[0], model.predict(x, verbose=0), atol=1e-5)


@needs_litert
def test_litert_round_trip_parity_and_metadata(run_dir: Path, tmp_path: Path) -> None:
    result = export_model(run_dir, "litert", tmp_path / "tiny", verify=True, samples=16)

    assert result.path == tmp_path / "tiny.tflite" and result.max_abs_diff <= 1e-5
    assert result.extra_files == (tmp_path / "tiny.blockbuilder.json",)
    assert json.loads(result.extra_files[0].read_text())["class_names"] == CLASSES


def test_missing_extra_names_the_extra(monkeypatch, tmp_path: Path, model) -> None:
    hide(monkeypatch, "tf2onnx")

    with pytest.raises(ExportError, match=r"onnx export needs the 'onnx' extra \(missing: tf2onnx\); "
                                          r"install it with: pip install 'blockbuilder\[onnx\]'"):
        export_model(model, "onnx", tmp_path / "tiny")
    assert list(tmp_path.iterdir()) == []


def test_litert_verify_without_runtime_names_the_extra(monkeypatch, tmp_path: Path, model) -> None:
    hide(monkeypatch, "ai_edge_litert")

    with pytest.raises(ExportError, match=r"missing: ai_edge_litert.*pip install 'blockbuilder\[litert\]'"):
        export_model(model, "litert", tmp_path / "tiny", verify=True)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- atomic writes


def test_existing_target_is_refused_then_replaced_with_force(tmp_path: Path, model) -> None:
    target = tmp_path / "tiny"
    target.mkdir()
    (target / "old.txt").write_text("keep me")

    with pytest.raises(ExportError, match="already exists.*--force"):
        export_model(model, "savedmodel", target)
    assert (target / "old.txt").read_text() == "keep me"

    export_model(model, "savedmodel", target, force=True)
    assert (target / "saved_model.pb").is_file() and not (target / "old.txt").exists()
    assert leftovers(tmp_path) == []


def test_failing_export_leaves_no_directory(monkeypatch, tmp_path: Path, model) -> None:
    def half_written(model, metadata, path: Path) -> list:
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setitem(export_module._WRITERS, "savedmodel", half_written)

    with pytest.raises(KeyboardInterrupt):
        export_model(model, "savedmodel", tmp_path / "out" / "tiny")
    assert list((tmp_path / "out").iterdir()) == []


def test_failed_parity_check_writes_nothing(tmp_path: Path, model) -> None:
    fmt = "onnx" if importlib.util.find_spec("onnxruntime") else "keras"  # the fastest fresh process
    with pytest.raises(ExportError, match=r"parity check failed: largest absolute difference .* > tolerance -1"):
        export_model(model, fmt, tmp_path / "tiny", verify=True, samples=2, tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "no such file or directory"),
        (lambda p: p, "not a model (a run directory must contain model.keras)"),
        (lambda p: (p / "notes.txt").write_text("hi") and p / "notes.txt", "not a model (expected a .keras file"),
        (lambda p: (p / "bad.keras").write_bytes(b"PK\x03\x04 broken") and p / "bad.keras", "cannot read model"),
    ],
    ids=["missing", "empty-dir", "not-keras", "corrupt-keras"],
)
def test_bad_source_is_one_line_error(tmp_path: Path, make, message: str) -> None:
    source = make(tmp_path)
    with pytest.raises(ExportError) as info:
        export_model(source, "savedmodel", tmp_path / "out")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_run_whose_resolved_yaml_is_not_utf8_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    (run_dir / "resolved.yaml").write_bytes("name: caf\u00e9\n".encode("latin-1"))

    with pytest.raises(ExportError) as error:
        export_model(run_dir, "savedmodel", tmp_path / "out")

    assert str(error.value) == f"{run_dir / 'resolved.yaml'}: not UTF-8 text (invalid continuation byte at byte 9)"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["savedmodel", "keras"])
def test_unwritable_target_is_one_line(model, fmt: str) -> None:
    target = "/proc/x" + ("" if fmt == "savedmodel" else ".keras")

    with pytest.raises(CommandError) as error:
        export_model(model, fmt, "/proc/x")

    assert str(error.value) == f"cannot write {target}: No such file or directory"


def test_cli_export_verify_prints_parity(run_dir: Path, tmp_path: Path) -> None:
    done = run_cli("export", run_dir, "--format", "savedmodel", "-o", tmp_path / "exp", "--verify")

    assert done.returncode == 0, done.stderr
    assert f"exported savedmodel to {tmp_path / 'exp'}" in done.stdout
    assert "largest absolute difference" in done.stdout and "over 8 random inputs" in done.stdout


def test_cli_bad_input_exit_1_without_traceback(cli, tmp_path: Path) -> None:
    (tmp_path / "bad.keras").write_text("not a zip")
    code, out, err = cli("export", tmp_path / "bad.keras", "-o", tmp_path / "out")

    assert code == 1 and out == ""
    assert err == f"blockbuilder export: error: {tmp_path / 'bad.keras'}: cannot read model " \
                  "(not a valid .keras archive)\n"


def test_cli_refuses_existing_output(cli, run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    code, out, err = cli("export", run_dir, "-o", tmp_path / "exp")

    assert code == 1 and out == ""
    assert err == f"blockbuilder export: error: {tmp_path / 'exp'}: already exists (use --force to replace it)\n"


def test_the_parity_check_puts_this_checkout_on_the_fresh_process_path() -> None:
    """The ``.keras`` check runs in a fresh process with PYTHONPATH set to the folder holding ``blockbuilder/``
    (it named ``blockbuilder/`` itself, so an uninstalled checkout could not import the package)."""
    from blockbuilder.serving import parity

    assert (Path(parity._package_root()) / "blockbuilder" / "__init__.py").is_file()


# --------------------------------------------------------------------------- mixed precision

MIXED_ARCH = """
name: tiny_mixed
input: [8, 8, 1]
classes: 3
network:
  - conv: {filters: 4, kernel: 3, norm: batchnorm, activation: relu}
  - global_avg_pool
  - dense: {units: $classes, activation: softmax}
"""


def mixed_run(tmp_path: Path, policy: str) -> Path:
    """A run directory whose model was built under a mixed policy, as ``train --precision P`` builds it."""
    import keras

    import blockbuilder

    keras.mixed_precision.set_global_policy(policy)
    model = blockbuilder.build(blockbuilder.loads(MIXED_ARCH))
    keras.mixed_precision.set_global_policy("float32")
    run = tmp_path / "runs" / "tiny_mixed"
    run.mkdir(parents=True)
    model.save(run / "model.keras")
    (run / "resolved.yaml").write_text(MIXED_ARCH)
    (run / "metrics.json").write_text(json.dumps({"class_names": CLASSES}))
    return run


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_precision_model_returns_float32(tmp_path: Path, policy: str) -> None:
    import blockbuilder

    model = blockbuilder.load_model(mixed_run(tmp_path, policy) / "model.keras")
    y = model.predict(np.ones((2, 8, 8, 1), np.float32), verbose=0)

    assert y.dtype == np.float32 and model.layers[1].compute_dtype != "float32"  # the body stays mixed
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("fmt", ["savedmodel", "keras", pytest.param("onnx", marks=needs_onnx),
                                 pytest.param("litert", marks=needs_litert)])
def test_a_mixed_precision_run_exports_and_verifies(cli, tmp_path: Path, fmt: str) -> None:
    code, out, err = cli("export", mixed_run(tmp_path, "mixed_bfloat16"), "--format", fmt, "-o", tmp_path / "exp",
                         "--verify")

    assert (code, err) == (0, "")
    assert "verified in a fresh process: largest absolute difference" in out
    if fmt == "savedmodel":
        import tensorflow as tf

        outputs = tf.saved_model.load(str(tmp_path / "exp")).signatures["serving_default"].structured_outputs
        assert [spec.dtype for spec in outputs.values()] == [tf.float32]
        metadata = json.loads((tmp_path / "exp" / "assets" / "blockbuilder.json").read_text())
        assert metadata["output"]["dtype"] == "float32"


def test_onnx_and_litert_get_the_float32_twin_of_a_mixed_model(tmp_path: Path) -> None:
    import blockbuilder

    mixed = blockbuilder.load_model(mixed_run(tmp_path, "mixed_bfloat16") / "model.keras")
    twin = export_module.float32_copy(mixed)
    x = random_inputs({"shape": [None, 8, 8, 1]}, 16, seed=3)

    assert {layer.compute_dtype for layer in twin.layers} == {"float32"}
    assert [w.shape for w in twin.get_weights()] == [w.shape for w in mixed.get_weights()]
    np.testing.assert_allclose(twin.predict(x, verbose=0), mixed.predict(x, verbose=0), atol=0.02)
    assert export_module.float32_copy(twin) is twin
