"""Training on the JAX and PyTorch backends without TensorFlow (issue 14).

The CLI runs in real processes with ``import tensorflow`` made to fail by the ``sitecustomize`` module
of ``tools/without_tensorflow`` first on ``PYTHONPATH``; the numbers come from the run's metrics.json.
GPU decisions are tested with fake devices (no GPU here).
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS, backend_env
from test_training_runs import RESUME_NET as KILLED_NET

from blockbuilder.training import devices, pipeline
from blockbuilder.training.spec import AugmentationSpec, TrainError

REPO = Path(__file__).resolve().parents[2]
def start(tmp: Path, backend: str, hide_tensorflow: bool, *args: str) -> subprocess.Popen[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "blockbuilder", *args], env=backend_env(backend, hide_tensorflow),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)




def test_savedmodel_export_without_tensorflow_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from blockbuilder.serving import export

    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow -> ImportError
    with pytest.raises(export.ExportError) as error:
        export._require_backend("savedmodel")
    assert str(error.value) == ("savedmodel export needs TensorFlow, which is not installed "
                                "(pip install tensorflow; or export --format keras)")
    export._require_backend("keras")  # .keras needs no TensorFlow


# the kill -9 test's network (dropout, drop-path, BatchNorm, augmentation), two epochs in float32
RESUME_NET = KILLED_NET.replace("  epochs: 3\n", "  epochs: 2\n  precision: float32\n")

RESUME_SCRIPT = """
import json, sys
import blockbuilder

arch, out = sys.argv[1], sys.argv[2]
straight = blockbuilder.train(arch, output=out + "/straight")
blockbuilder.train(arch, output=out + "/resumed", epochs=1)
resumed = blockbuilder.train(arch, output=out + "/resumed", epochs=2, resume=True)
print(json.dumps({"straight": straight.metrics, "resumed": resumed.metrics}))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_is_exact_without_tensorflow(tmp_path: Path, backend: str) -> None:
    """Dropout, drop-path, BatchNorm and augmentation; the resumed run is a new model in the same process,
    whose first ``fit`` once started at the epoch's second batch (Keras peeks at one batch of a
    ``PyDataset`` and goes on from there), and PyTorch's dropout drew from torch's global generator."""
    (tmp_path / "resume_net.yaml").write_text(RESUME_NET)
    (tmp_path / "child.py").write_text(RESUME_SCRIPT)
    done = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "resume_net.yaml"),
                           str(tmp_path)], env=backend_env(backend, True, tmp_path / "jax-cache"), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    straight, resumed = result["straight"], result["resumed"]
    assert resumed["epochs_completed"] == straight["epochs_completed"] == 2
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    assert resumed["test"] == straight["test"]


NESTED_MODEL_SCRIPT = """
import json, sys
import keras
import numpy as np
import blockbuilder

arch = blockbuilder.load("resnet20_cifar")
model = blockbuilder.build(arch)
summary = blockbuilder.summarize(arch, model)
names = [name for name, _ in model.named_parameters()] if keras.backend.backend() == "torch" else []
x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
model.save(sys.argv[1])
again = blockbuilder.load_model(sys.argv[1])
difference = float(np.abs(model.predict(x, verbose=0) - again.predict(x, verbose=0)).max())
print(json.dumps({"params": summary.params_total, "torch_parameters": len(names) or len(model.weights),
                  "weights": len(model.weights),
                  "dotted": [n for n in names if "." in n.split("torch_params.")[-1]],
                  "first": [layer.name for layer in model.layers[1:3]], "difference": difference}))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_blocks_build_summarise_save_and_load_without_tensorflow(tmp_path: Path, backend: str) -> None:
    """The same counts as on TensorFlow; on PyTorch, which refuses a parameter name with a dot while
    blockbuilder's layer names are dotted block paths, every weight is a torch parameter."""
    (tmp_path / "child.py").write_text(NESTED_MODEL_SCRIPT)
    done = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "model.keras")],
                          env=backend_env(backend, True), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["params"] == 271_098  # as on TensorFlow (architectures/expected.csv)
    assert result["torch_parameters"] == result["weights"] and not result["dotted"]
    assert result["first"] == ["stem", "stem.bn"] and result["difference"] == 0.0


# --------------------------------------------------------------------------- the pipeline


def _examples(count: int = 10) -> pipeline.Examples:
    images = np.arange(count * 4 * 4, dtype=np.float32).reshape(count, 4, 4, 1) / (count * 16)
    return pipeline.Examples(np.arange(count), images, shape=(4, 4, 1))


def _epoch(examples: pipeline.Examples, epoch: int, **kwargs: object) -> list[tuple[np.ndarray, np.ndarray]]:
    batches = pipeline.train_batches(examples, 3, seed=7, epoch=epoch, **kwargs)  # type: ignore[arg-type]
    return [batches[i] for i in range(len(batches))]


def test_an_epoch_is_a_function_of_seed_and_epoch_and_sees_every_example() -> None:
    examples = _examples()
    first, again, other = _epoch(examples, 0), _epoch(examples, 0), _epoch(examples, 1)
    assert [len(labels) for _, labels in first] == [3, 3, 3, 1]
    assert sorted(np.concatenate([labels for _, labels in first]).tolist()) == list(range(10))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert [labels.tolist() for _, labels in first] != [labels.tolist() for _, labels in other]
    dropped = _epoch(examples, 0, drop_remainder=True)
    assert [labels.tolist() for _, labels in dropped] == [labels.tolist() for _, labels in first[:3]]


def test_processes_share_an_epoch_without_overlap() -> None:
    examples = _examples()
    shares = [np.concatenate([labels for _, labels in _epoch(examples, 2, shard=(2, index))]) for index in (0, 1)]
    assert sorted(np.concatenate(shares).tolist()) == list(range(10)) and len(shares[0]) == len(shares[1]) == 5


def test_augmentation_depends_only_on_seed_epoch_and_batch_whatever_the_worker_order() -> None:
    steps = [AugmentationSpec.model_validate(s) for s in
             ({"random_crop": {"padding": 1}}, "flip", {"rotation": {"factor": 0.1}}, {"contrast": {"factor": 0.2}})]
    examples = _examples()
    batches = pipeline.train_batches(examples, 3, seed=7, epoch=0, augmentation=steps, input_shape=(4, 4, 1))
    backwards = [batches[i][0] for i in reversed(range(len(batches)))][::-1]
    forwards = [batches[i][0] for i in range(len(batches))]
    assert all(np.array_equal(a, b) for a, b in zip(forwards, backwards))
    plain = _epoch(examples, 0)
    assert any(not np.array_equal(a, b) for a, (b, _) in zip(forwards, plain))  # augmentation changed pixels
    assert all(0.0 <= a.min() and a.max() <= 1.0 and a.dtype == np.float32 for a in forwards)


def test_random_crop_shifts_whole_pixels_with_zeros() -> None:
    augment = pipeline.Augmenter([AugmentationSpec.model_validate({"random_crop": {"padding": 2}})])
    image = np.ones((1, 5, 5, 1), np.float32)
    shifted = [augment(image, (0, 0, k)) for k in range(20)]
    assert all(set(np.unique(s).tolist()) <= {0.0, 1.0} for s in shifted)
    assert len({float(s.sum()) for s in shifted}) > 1  # different shifts for different batches


def test_folder_images_are_decoded_by_read_image_and_resized(tmp_path: Path) -> None:
    from PIL import Image

    for label, value in (("cat", 0), ("dog", 255)):
        (tmp_path / label).mkdir()
        for k in range(10):
            Image.new("RGB", (12, 10), (value, value, value)).save(tmp_path / label / f"{k}.png")
    splits = pipeline.load_splits(f"folder:{tmp_path}", (8, 8, 1), 2)
    assert splits.class_names == ["cat", "dog"] and sum(splits.sizes.values()) == 20
    images, labels = pipeline.eval_batches(splits.test, 4)[0]
    assert images.shape == (4, 8, 8, 1) and images.dtype == np.float32
    # RGB files are read as grey by the luma weights of tf.image.rgb_to_grayscale, which add up to 0.9999
    assert np.allclose(images.reshape(4, -1).mean(axis=1), labels * 0.9999, atol=1e-6)
    assert splits.train.cache().files is None


# --------------------------------------------------------------------------- precision and devices


def _fake_jax(monkeypatch: pytest.MonkeyPatch, capabilities: list[str]) -> None:
    import jax

    fakes = [types.SimpleNamespace(platform="gpu", compute_capability=c) for c in capabilities]
    monkeypatch.setattr(jax, "devices", lambda *a: fakes or [types.SimpleNamespace(platform="cpu")])
    monkeypatch.setattr(devices.keras.backend, "backend", lambda: "jax")


def _fake_torch(monkeypatch: pytest.MonkeyPatch, capabilities: list[tuple[int, int]]) -> None:
    cuda = types.SimpleNamespace(is_available=lambda: bool(capabilities), device_count=lambda: len(capabilities),
                                 get_device_capability=lambda index: capabilities[index])
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setattr(devices.keras.backend, "backend", lambda: "torch")


@pytest.mark.parametrize(("capabilities", "expected"), [
    (["9.0"], "mixed_bfloat16"), (["8.0", "9.0"], "mixed_bfloat16"), (["8.6", "7.5"], "mixed_float16"),
    (["7.0"], "mixed_float16"), (["6.1"], "float32"), ([], "float32")])
def test_auto_precision_on_jax_gpus(monkeypatch: pytest.MonkeyPatch, capabilities: list[str], expected: str) -> None:
    _fake_jax(monkeypatch, capabilities)
    assert devices.resolve_precision("auto", "gpu") == expected
    assert devices.resolve_precision("float32", "gpu") == "float32"


@pytest.mark.parametrize(("capabilities", "expected"), [
    ([(9, 0)], "mixed_bfloat16"), ([(8, 0)], "mixed_bfloat16"), ([(7, 5)], "mixed_float16"),
    ([(6, 1)], "float32"), ([], "float32")])
def test_auto_precision_on_torch_gpus(monkeypatch: pytest.MonkeyPatch, capabilities: list[tuple[int, int]],
                                      expected: str) -> None:
    _fake_torch(monkeypatch, capabilities)
    assert devices.resolve_precision("auto", "gpu") == expected


def test_torch_placement_finds_gpus_or_says_there_are_none(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_torch(monkeypatch, [(9, 0)])
    assert devices.place("gpu").kind == "gpu" and devices.place("auto").kind == "gpu"
    _fake_torch(monkeypatch, [])
    assert devices.place("auto").kind == "cpu"
    with pytest.raises(TrainError, match="--device gpu asked for, but PyTorch sees no GPU"):
        devices.place("gpu")
    with pytest.raises(TrainError, match="need the JAX backend"):
        devices.place("auto", num_processes=2)


def test_device_gpu_on_jax_without_gpu_is_one_clear_error() -> None:
    pytest.importorskip("jax")
    import jax

    if jax.default_backend() != "cpu":  # pragma: no cover - a GPU machine
        pytest.skip("this machine has a GPU")
    with pytest.raises(TrainError, match="^--device gpu asked for, but JAX found only cpu devices$"):
        devices._jax_setup("gpu", None, None, None)


def test_a_data_set_string_is_read_by_its_registered_kind() -> None:
    from blockbuilder.errors import DataError
    from blockbuilder.training.sources import dataset_kind

    assert dataset_kind("folder:~/photos") == ("folder", str(Path("~/photos").expanduser()))
    assert dataset_kind("tfds:cifar10:train") == ("tfds", "cifar10:train")
    assert dataset_kind("csv:~/labels.csv") == ("csv", str(Path("~/labels.csv").expanduser()))
    with pytest.raises(DataError, match=r"^train\.dataset: unknown data set 'zip:x' \(use digits, tfds:NAME\[:SPLIT\], "
                                        r"folder:PATH, npz:PATH or csv:PATH\)$"):
        pipeline.load_splits("zip:x", (8, 8, 1), 10)
