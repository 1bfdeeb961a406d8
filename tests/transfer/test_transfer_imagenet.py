"""``weights: imagenet`` and keras.applications' legacy ``.h5`` files (issue 12, item 1 and the contract).

No network here: each test writes a file exactly as keras.applications' official ones are laid out
(Keras 2's ``save_weights``: ``layer_names``, and per layer ``weight_names`` such as
``conv1_conv/kernel:0``) from ``keras.applications.X(weights=None)`` with random weights, checks that
keras.applications itself loads it, puts it in a temporary Keras cache, and compares predictions.
The weights do not depend on the input size, so the models are built at 32x32 (keras.applications'
smallest), which keeps each network to a few seconds.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

import blockbuilder
from blockbuilder.errors import CommandError
from blockbuilder.transfer import imagenet

SIZE = 32


def save_like_keras_applications(model, path: Path) -> None:
    """Write ``model``'s weights as keras.applications' official ``.h5`` files are written."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode("utf8") for layer in model.layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in model.layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
            group.attrs["weight_names"] = names
            for name, weight in zip(names, layer.weights):
                group.create_dataset(name.decode("utf8"), data=np.asarray(weight))


def randomised(model, seed: int = 0):
    """Random BatchNorm statistics too (fresh ones are 0 and 1, which would hide a mix-up)."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shapes = [w.shape for w in layer.weights]
            layer.set_weights([rng.uniform(0.5, 1.5, shapes[0]), rng.normal(0, 0.1, shapes[1]),
                               rng.normal(0, 0.1, shapes[2]), rng.uniform(0.5, 1.5, shapes[3])])
    return model


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache; the ``models`` folder keras.applications' files go in."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "keras" / "models").mkdir(parents=True)
    return tmp_path / "keras" / "models"


def reference(application, path: Path, x: np.ndarray):
    """keras.applications' model with ``path`` loaded as keras.applications loads it (``load_weights``)."""
    model = application(weights=None, input_shape=(SIZE, SIZE, 3))
    model.load_weights(str(path))
    return np.asarray(model(x, training=False))


def test_resnet50_built_with_its_keras_applications_file_predicts_what_keras_applications_does(
        keras_home, cli, tmp_path):
    """The contract: ``blockbuilder build resnet50 --weights resnet50_..._kernels.h5 -o m.keras``."""
    import keras

    source = randomised(keras.applications.ResNet50(weights=None, input_shape=(SIZE, SIZE, 3)))
    path = tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    save_like_keras_applications(source, path)
    x = np.random.default_rng(1).uniform(0, 1, (2, SIZE, SIZE, 3)).astype("float32")
    expected = reference(keras.applications.ResNet50, path, x)
    assert expected.max() > 2 / 1000  # not a uniform softmax: a mix-up would show

    code, out, err = cli("build", "resnet50", "--set", f"input=[{SIZE}, {SIZE}, 3]", "--weights", str(path),
                         "-o", str(tmp_path / "m.keras"))
    assert code == 0, err
    assert "107 of 107 layers loaded" in out and "matched in order" in out
    model = blockbuilder.load_model(str(tmp_path / "m.keras"))
    assert np.abs(np.asarray(model(x, training=False)) - expected).max() <= 1e-6
    fresh = blockbuilder.build(blockbuilder.load("resnet50", [f"input=[{SIZE}, {SIZE}, 3]"]))
    assert np.abs(np.asarray(fresh(x, training=False)) - expected).max() > 1e-4  # the check can fail


def test_densenet121_imagenet_from_the_keras_cache_predicts_what_keras_applications_does(keras_home, monkeypatch):
    import keras

    source = randomised(keras.applications.DenseNet121(weights=None, input_shape=(SIZE, SIZE, 3)))
    path = keras_home / "densenet121_weights_tf_dim_ordering_tf_kernels.h5"
    save_like_keras_applications(source, path)
    files = imagenet.IMAGENET_FILES["densenet121"]
    # The generated file stands for the official one: the hash checked is the generated file's.
    monkeypatch.setitem(imagenet.IMAGENET_FILES, "densenet121",
                        imagenet.ImagenetFiles(files.folder, files.top, hashlib.md5(path.read_bytes()).hexdigest(),
                                               files.notop, files.notop_hash))
    x = np.random.default_rng(2).uniform(0, 1, (2, SIZE, SIZE, 3)).astype("float32")
    expected = reference(keras.applications.DenseNet121, path, x)

    arch = blockbuilder.load("densenet121", [f"input=[{SIZE}, {SIZE}, 3]", "weights=imagenet"])
    model = blockbuilder.build(arch)
    assert np.abs(np.asarray(model(x, training=False)) - expected).max() <= 1e-6


@pytest.mark.skipif(not (imagenet.zoo_dir() / "mobilenet_v2.yaml").is_file(), reason="no mobilenet_v2 in the zoo")
def test_mobilenet_v2_notop_file_loads_into_a_new_head_and_strict_names_the_first_skip(keras_home, cli, write):
    """A 5-class network on MobileNetV2 takes keras.applications' file without the classifier (no hash is
    checked for it, as in keras.applications); its features equal keras.applications' include_top=False."""
    import keras

    source = randomised(keras.applications.MobileNetV2(weights=None, include_top=False,
                                                       input_shape=(SIZE, SIZE, 3)))
    path = keras_home / imagenet.IMAGENET_FILES["mobilenet_v2"].notop
    save_like_keras_applications(source, path)
    x = np.random.default_rng(3).uniform(0, 1, (2, SIZE, SIZE, 3)).astype("float32")
    features = keras.applications.MobileNetV2(weights=None, include_top=False, pooling="avg",
                                              input_shape=(SIZE, SIZE, 3))
    features.load_weights(str(path))
    expected = np.asarray(features(x, training=False))

    arch = blockbuilder.loads(f"extends: mobilenet_v2\ninput: [{SIZE}, {SIZE}, 3]\nclasses: 5\nweights: imagenet\n")
    from blockbuilder.transfer import build
    from blockbuilder.transfer.embed import output_layer

    model, report = build(arch)
    assert report.loaded == len(report.results) - 1
    assert [(r.layer, r.why) for r in report.skipped] == [("dense1", "not in the file")]
    probe = keras.Model(model.inputs, output_layer(model, "global_avg_pool1").output)
    assert np.abs(np.asarray(probe(x, training=False)) - expected).max() <= 1e-6

    strict = write(f"extends: mobilenet_v2\ninput: [{SIZE}, {SIZE}, 3]\nclasses: 5\n"
                   "weights: {source: imagenet, strict: true}\n")
    code, out, err = cli("build", str(strict), "-o", str(keras_home.parent / "m.keras"))
    assert code == 1
    assert err.strip() == ("blockbuilder build: error: weights imagenet (strict): dense1 was not loaded: not in the "
                           f"file ({1} of {len(report.results)} layers skipped)")


def test_no_network_and_no_cached_file_names_the_file_its_address_and_the_cache(keras_home, monkeypatch):
    files = imagenet.IMAGENET_FILES["resnet50"]
    unreachable = "http://127.0.0.1:9/keras-applications/resnet/"  # the discard port: refused at once
    monkeypatch.setitem(imagenet.IMAGENET_FILES, "resnet50",
                        imagenet.ImagenetFiles(unreachable, files.top, files.top_hash, files.notop, files.notop_hash))
    arch = blockbuilder.loads("extends: resnet50\nclasses: 5\nweights: imagenet\n")
    with pytest.raises(CommandError) as error:
        imagenet.fetch(arch)
    message = str(error.value)
    assert message.startswith(f"weights imagenet: {files.notop} is not in the Keras cache ({keras_home}), and "
                              f"downloading it from {unreachable}{files.notop} failed (")
    assert "\n" not in message

    (keras_home / files.notop).write_bytes(b"not the official file")
    with pytest.raises(CommandError, match=r"is in the Keras cache \(.*\) but its md5 hash is not keras.applications' "
                                           r"\(4d473c1dd8becc155b73f8504c6f6626\)"):
        imagenet.fetch(arch)


def test_imagenet_for_a_network_without_keras_applications_weights_is_refused_before_tensorflow(cli):
    code, out, err = cli("summary", "lenet5", "--weights", "imagenet")
    assert code == 1
    assert err.startswith("blockbuilder summary: error: weights imagenet: lenet5 is not a zoo network with "
                          "keras.applications ImageNet weights, and does not extend one (densenet121, ")


def test_the_files_are_keras_applications_own():
    """Addresses, names and hashes as keras.applications has them (its ResNet table is importable)."""
    from keras.src.applications import resnet

    for name in ("resnet50", "resnet101", "resnet152", "resnet50v2"):
        files = imagenet.IMAGENET_FILES[name]
        assert files.folder == resnet.BASE_WEIGHTS_PATH
        assert (files.top_hash, files.notop_hash) == resnet.WEIGHTS_HASHES[name]
        assert files.top == f"{name}_weights_tf_dim_ordering_tf_kernels.h5"
    assert all((imagenet.zoo_dir() / f"{name}.yaml").is_file() or name == "mobilenet_v2"
               for name in imagenet.IMAGENET_FILES)


def test_the_cache_is_keras_own(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert imagenet.cache_dir() == tmp_path / "models"
    monkeypatch.delenv("KERAS_HOME")
    home = Path(os.path.expanduser("~/.keras"))
    assert imagenet.cache_dir() in (home / "models", Path("/tmp/.keras/models"))


def test_a_network_that_extends_a_zoo_network_uses_its_files(write):
    base = write("extends: resnet50\nname: flowers\nclasses: 5\n", "base.yaml")
    child = write("extends: base.yaml\nname: tulips\n", "child.yaml")
    arch = blockbuilder.load(child)
    assert imagenet.zoo_network(arch) == "resnet50"
    assert imagenet.candidates(arch)[0][0] == "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert imagenet.candidates(blockbuilder.load("resnet50"))[0][0] == "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    assert imagenet.zoo_network(blockbuilder.load(base.parent / "base.yaml")) == "resnet50"


@pytest.mark.parametrize("size", ["b0", "b1", "b2", "b3", "s", "m", "l"])
def test_efficientnet_v2_files_are_keras_applications_own(size):
    """keras.applications' efficientnet_v2.py names them efficientnetv2-b0.h5 ... efficientnetv2-l_notop.h5."""
    from keras.src.applications import efficientnet_v2

    name, stem = f"efficientnet_v2_{size}", f"efficientnetv2-{size}"
    files = imagenet.IMAGENET_FILES[name]
    assert (files.url(files.top), files.url(files.notop)) == (efficientnet_v2.BASE_WEIGHTS_PATH + f"{stem}.h5",
                                                              efficientnet_v2.BASE_WEIGHTS_PATH + f"{stem}_notop.h5")
    assert (files.top_hash, files.notop_hash) == efficientnet_v2.WEIGHTS_HASHES[size if size[0] == "b" else f"-{size}"]
    assert imagenet.candidates(blockbuilder.load(name))[0][0] == f"{stem}.h5"
    assert imagenet.candidates(blockbuilder.load(name, ["classes=5"]))[0][0] == f"{stem}_notop.h5"


def test_efficientnet_v2_s_imagenet_from_the_keras_cache_predicts_what_keras_applications_does(keras_home, monkeypatch):
    """S stands for the family (B0's file with S's table and preprocessing): its weights load by order."""
    import keras

    source = randomised(keras.applications.EfficientNetV2S(weights=None, input_shape=(SIZE, SIZE, 3)))
    files = imagenet.IMAGENET_FILES["efficientnet_v2_s"]
    path = keras_home / files.top
    save_like_keras_applications(source, path)
    monkeypatch.setitem(imagenet.IMAGENET_FILES, "efficientnet_v2_s",
                        imagenet.ImagenetFiles(files.folder, files.top, hashlib.md5(path.read_bytes()).hexdigest(),
                                               files.notop, files.notop_hash))
    x = np.random.default_rng(2).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    expected = reference(keras.applications.EfficientNetV2S, path, x)

    model = blockbuilder.build(blockbuilder.load("efficientnet_v2_s", [f"input=[{SIZE}, {SIZE}, 3]", "weights=imagenet"]))
    assert np.abs(np.asarray(model(x, training=False)) - expected).max() <= 1e-6
    fresh = blockbuilder.build(blockbuilder.load("efficientnet_v2_s", [f"input=[{SIZE}, {SIZE}, 3]"]))
    assert np.abs(np.asarray(fresh(x, training=False)) - expected).max() > 1e-4  # the check can fail
