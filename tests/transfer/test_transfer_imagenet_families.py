"""``weights: imagenet`` for the zoo's other keras.applications families (issue 21, item 2): MobileNet v1,
MobileNetV3, EfficientNet B0-B7, Xception, Inception-ResNet-v2, NASNet.

Two kinds of test, as in test_transfer_imagenet.py (whose helpers these are): the table of files equals
keras.applications' own constants and source (so a Keras upgrade that moves a file fails here), and, for
one network of each family at its smallest input, a file written in keras.applications' legacy ``.h5``
layout from ``keras.applications.X(weights=None)`` with random weights is put in a temporary Keras cache
and loaded with ``weights: imagenet``; the network predicts what keras.applications predicts with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import re

import numpy as np
import pytest
from test_transfer_imagenet import keras_home, save_like_keras_applications  # noqa: F401 - a fixture

import blockbuilder
from blockbuilder.transfer import imagenet

EFFICIENTNETS = [f"efficientnet_b{i}" for i in range(8)]


def _source(module) -> str:
    """A keras.applications module's source, its split string literals joined (``"a_" "b.h5"`` is ``"a_b.h5"``)."""
    return re.sub(r'"\s*\n?\s*"', "", inspect.getsource(module))


def _in_cache_order(files) -> list[tuple[str, str | None]]:
    return [(files.top, files.top_hash), (files.notop, files.notop_hash)]


def test_mobilenet_files_are_keras_applications_own():
    """mobilenet.py names its files ``mobilenet_%s_%d_tf.h5 % (alpha_text, rows)``, checks no hash."""
    from keras.src.applications import mobilenet, mobilenet_v3

    files = imagenet.IMAGENET_FILES["mobilenet_v1"]
    source = _source(mobilenet)
    assert '"mobilenet_%s_%d_tf.h5" % (alpha_text, rows)' in source and 'alpha_text = "1_0"' in source
    assert '"mobilenet_%s_%d_tf_no_top.h5" % (alpha_text, rows)' in source and "file_hash" not in source
    assert _in_cache_order(files) == [("mobilenet_1_0_224_tf.h5", None), ("mobilenet_1_0_224_tf_no_top.h5", None)]
    assert files.url(files.top) == mobilenet.BASE_WEIGHT_PATH + files.top
    for kind in ("small", "large"):
        files = imagenet.IMAGENET_FILES[f"mobilenet_v3_{kind}"]
        model_name = f"{kind}_224_1.0_float"  # "{}{}_224_{}_float".format(model_type, "", str(alpha))
        assert 'file_name = f"weights_mobilenet_v3_{model_name}_no_top_v2.h5"' in _source(mobilenet_v3)
        top, notop = mobilenet_v3.WEIGHTS_HASHES[model_name]
        assert _in_cache_order(files) == [(f"weights_mobilenet_v3_{model_name}.h5", top),
                                          (f"weights_mobilenet_v3_{model_name}_no_top_v2.h5", notop)]
        assert files.url(files.notop) == mobilenet_v3.BASE_WEIGHT_PATH + files.notop


@pytest.mark.parametrize("name", EFFICIENTNETS)
def test_efficientnet_files_are_keras_applications_own(name):
    """efficientnet.py: ``name + ".h5"`` / ``"_notop.h5"``, name ``efficientnetb0``, hashes by ``weights_name``."""
    from keras.src.applications import efficientnet

    size = name.split("_")[1]
    files = imagenet.IMAGENET_FILES[name]
    assert f'name="efficientnet{size}"' in _source(efficientnet)
    assert _in_cache_order(files) == [(f"efficientnet{size}.h5", efficientnet.WEIGHTS_HASHES[size][0]),
                                      (f"efficientnet{size}_notop.h5", efficientnet.WEIGHTS_HASHES[size][1])]
    assert files.url(files.top) == efficientnet.BASE_WEIGHTS_PATH + files.top
    assert files.stddev_as_variance
    assert imagenet.candidates(blockbuilder.load(name))[0][0] == files.top
    assert imagenet.candidates(blockbuilder.load(name, ["classes=5"]))[0][0] == files.notop


def test_xception_inception_resnet_v2_and_nasnet_files_are_keras_applications_own():
    """Their names and hashes are literals in keras' source, the top file's before the notop file's."""
    from keras.src.applications import inception_resnet_v2, nasnet, xception

    files = imagenet.IMAGENET_FILES["xception"]
    assert (files.url(files.top), files.url(files.notop)) == (xception.WEIGHTS_PATH, xception.WEIGHTS_PATH_NO_TOP)
    files = imagenet.IMAGENET_FILES["inception_resnet_v2"]
    assert files.folder == inception_resnet_v2.BASE_WEIGHT_URL
    urls = {"nasnet_mobile": (nasnet.NASNET_MOBILE_WEIGHT_PATH, nasnet.NASNET_MOBILE_WEIGHT_PATH_NO_TOP),
            "nasnet_large": (nasnet.NASNET_LARGE_WEIGHT_PATH, nasnet.NASNET_LARGE_WEIGHT_PATH_NO_TOP)}
    for name, module in [("xception", xception), ("inception_resnet_v2", inception_resnet_v2),
                         ("nasnet_mobile", nasnet), ("nasnet_large", nasnet)]:
        files, source = imagenet.IMAGENET_FILES[name], _source(module)
        where = [source.index(f'"{text}"') for text in (files.top, files.top_hash, files.notop, files.notop_hash)]
        assert where == sorted(where), name
        assert (files.url(files.top), files.url(files.notop)) == urls.get(
            name, (files.folder + files.top, files.folder + files.notop))


def test_every_network_with_files_is_in_the_zoo():
    assert all((imagenet.zoo_dir() / f"{name}.yaml").is_file() for name in imagenet.IMAGENET_FILES)


def randomised(model, seed: int = 0):
    """Random BatchNorm statistics (and scales, where a BatchNorm has them: Inception-ResNet-v2's have none),
    and a classifier 30 times larger than its initialiser's, so that the predictions are far from uniform."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for weight, (low, high) in [(layer.gamma, (0.5, 1.5)), (layer.beta, (-0.2, 0.2)),
                                        (layer.moving_mean, (-0.2, 0.2)), (layer.moving_variance, (0.5, 1.5))]:
                if weight is not None:
                    weight.assign(rng.uniform(low, high, weight.shape))
    classifier = [layer for layer in model.layers if layer.weights][-1]
    classifier.weights[0].assign(np.asarray(classifier.weights[0]) * 30)
    return model


def _cached(keras_home, monkeypatch, name: str, model, *, top: bool = True):
    """``model``'s weights as ``name``'s file in the cache; the hash checked is the written file's."""
    files = imagenet.IMAGENET_FILES[name]
    path = keras_home / (files.top if top else files.notop)
    save_like_keras_applications(model, path)
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setitem(imagenet.IMAGENET_FILES, name, dataclasses.replace(
        files, **({"top_hash": digest} if top else {"notop_hash": digest})))
    return path


@pytest.mark.parametrize("name, application, size, low, high", [
    # Pixels as each network takes them: MobileNetV3 rescales 0-255 itself, the others take [-1, 1].
    ("mobilenet_v1", "MobileNet", 32, -1, 1),
    ("mobilenet_v3_small", "MobileNetV3Small", 32, 0, 255),
    ("xception", "Xception", 71, -1, 1),
    ("inception_resnet_v2", "InceptionResNetV2", 75, -1, 1),
    ("nasnet_mobile", "NASNetMobile", 32, -1, 1),
])
def test_imagenet_from_the_keras_cache_predicts_what_keras_applications_does(
        name, application, size, low, high, keras_home, monkeypatch):  # noqa: F811 - the fixture
    import keras

    app = getattr(keras.applications, application)
    source = randomised(app(weights=None, input_shape=(size, size, 3)))
    path = _cached(keras_home, monkeypatch, name, source)
    x = np.random.default_rng(4).uniform(low, high, (2, size, size, 3)).astype("float32")
    reference = app(weights=None, input_shape=(size, size, 3))
    reference.load_weights(str(path))  # as keras.applications loads its file
    expected = np.asarray(reference(x, training=False))
    assert expected.max() > 0.01  # far from a uniform softmax: a mix-up would show

    from blockbuilder.transfer import build

    model, report = build(blockbuilder.load(name, [f"input=[{size}, {size}, 3]", "weights=imagenet"]))
    assert (report.loaded, report.skipped, report.by_order) == (len(report.results), [], True)
    assert np.abs(np.asarray(model(x, training=False)) - expected).max() <= 1e-6


def test_efficientnet_takes_keras_applications_normalization_as_keras_applications_reads_it(keras_home, monkeypatch):
    """keras.applications' EfficientNet file keeps the ImageNet standard deviations as its Normalization's
    variance, and keras.applications divides by their square root once more (tensorflow#49930); the zoo's
    one ``normalization`` takes them squared. A 5-class network on B0 with the notop file: its features
    equal keras.applications' EfficientNetB0(weights="imagenet", include_top=False), built through
    keras.applications' own ``imagenet`` path (its download replaced by the file written here)."""
    import keras
    from keras.src.applications import efficientnet

    from blockbuilder.transfer import build
    from blockbuilder.transfer.embed import output_layer

    size = 32
    source = randomised(keras.applications.EfficientNetB0(weights=None, include_top=False,
                                                          input_shape=(size, size, 3)))
    normalization = next(layer for layer in source.layers if isinstance(layer, keras.layers.Normalization))
    normalization.set_weights([np.array([0.485, 0.456, 0.406]), np.array(efficientnet.IMAGENET_STDDEV_RGB),
                               np.array(0)])  # as the official file holds them
    path = _cached(keras_home, monkeypatch, "efficientnet_b0", source, top=False)
    monkeypatch.setattr(efficientnet.file_utils, "get_file", lambda *args, **kwargs: str(path))
    reference = keras.applications.EfficientNetB0(weights="imagenet", include_top=False, pooling="avg",
                                                  input_shape=(size, size, 3))
    x = np.random.default_rng(5).uniform(0, 255, (2, size, size, 3)).astype("float32")
    expected = np.asarray(reference(x, training=False))

    model, report = build(blockbuilder.loads(f"extends: efficientnet_b0\ninput: [{size}, {size}, 3]\nclasses: 5\n"
                                             "weights: imagenet\n"))
    assert [r.layer for r in report.skipped] == ["dense1"]  # the new classifier only
    probe = keras.Model(model.inputs, output_layer(model, "global_avg_pool1").output)
    difference = np.abs(np.asarray(probe(x, training=False)) - expected).max()
    # One multiplication fewer than keras.applications: measured 1.1e-5 on features up to 26.6 (4e-7 of them).
    assert difference <= 1e-6 * np.abs(expected).max()

    monkeypatch.setitem(imagenet.IMAGENET_FILES, "efficientnet_b0", dataclasses.replace(
        imagenet.IMAGENET_FILES["efficientnet_b0"], stddev_as_variance=False))
    unsquared, _ = build(blockbuilder.loads(f"extends: efficientnet_b0\ninput: [{size}, {size}, 3]\nclasses: 5\n"
                                            "weights: imagenet\n"))
    wrong = keras.Model(unsquared.inputs, output_layer(unsquared, "global_avg_pool1").output)
    # measured 2.6e-3: ten times the tolerance and more
    assert np.abs(np.asarray(wrong(x, training=False)) - expected).max() > 1e-5 * np.abs(expected).max()
