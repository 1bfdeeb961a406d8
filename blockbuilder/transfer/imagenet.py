"""``weights: imagenet``: keras.applications' own weight files, from the Keras cache or downloaded.

The files, their addresses and their md5 hashes are exactly keras.applications' (``resnet.py``,
``densenet.py``, ``vgg16.py`` ...), fetched with ``keras.utils.get_file`` into the same cache
(``$KERAS_HOME/models``, else ``~/.keras/models``), so a file keras.applications downloaded once
serves blockbuilder too, and the other way round. They are legacy Keras ``.h5`` files whose layers
carry keras.applications' names (``conv2_block1_1_conv``); the zoo builds the same layers in the same
order, so they load by order (:mod:`blockbuilder.transfer.weights`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from blockbuilder.errors import CommandError, SpecError, UsageError
from blockbuilder.language.document import Map, load_file
from blockbuilder.language.resolve import find, zoo_dir

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.language.architecture import Architecture

__all__ = ["IMAGENET_FILES", "ImagenetFiles", "cache_dir", "candidates", "fetch", "zoo_network"]

_STORAGE = "https://storage.googleapis.com/tensorflow/keras-applications/"
_MOBILENET_V2 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224"


@dataclass(frozen=True)
class ImagenetFiles:
    """keras.applications' two weight files of one network: with the classifier (top) and without.

    Attributes:
        folder: The address of the folder both files are in.
        top, notop: File names (in the Keras cache).
        top_hash, notop_hash: Their md5 hashes as keras.applications checks them (``None``: not checked).
        remote: The files' names at ``folder`` where they differ from their names in the cache (NASNet's
            ``NASNet-mobile.h5`` is cached as ``nasnet_mobile.h5``).
        stddev_as_variance: The file's ``Normalization`` layer holds standard deviations where a variance
            belongs (keras.applications' EfficientNet B0-B7, which divides once more by their square
            root after it: tensorflow/tensorflow#49930); loading squares them, so that the network's one
            ``normalization`` computes what keras.applications' two layers compute.
    """

    folder: str
    top: str
    top_hash: str | None
    notop: str
    notop_hash: str | None
    remote: Mapping[str, str] = field(default_factory=dict)
    stddev_as_variance: bool = False

    def url(self, file_name: str) -> str:
        return self.folder + self.remote.get(file_name, file_name)


def _tf_kernels(folder: str, stem: str, top_hash: str, notop_hash: str) -> ImagenetFiles:
    return ImagenetFiles(_STORAGE + folder, f"{stem}_weights_tf_dim_ordering_tf_kernels.h5", top_hash,
                         f"{stem}_weights_tf_dim_ordering_tf_kernels_notop.h5", notop_hash)


#: Zoo networks that are keras.applications' networks layer for layer, with their ImageNet files.
IMAGENET_FILES: dict[str, ImagenetFiles] = {
    "resnet50": _tf_kernels("resnet/", "resnet50", "2cb95161c43110f7111970584f804107",
                            "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": _tf_kernels("resnet/", "resnet101", "f1aeb4b969a6efcfb50fad2f0c20cfc5",
                             "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": _tf_kernels("resnet/", "resnet152", "100835be76be38e30d865e96f2aaae62",
                             "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "resnet50v2": _tf_kernels("resnet/", "resnet50v2", "3ef43a0b657b3be2300d5770ece849e0",
                              "fac2f116257151a9d068a22e544a4917"),
    "densenet121": _tf_kernels("densenet/", "densenet121", "9d60b8095a5708f2dcce2bca79d332c7",
                               "30ee3e1110167f948a6b9946edeeb738"),
    "densenet169": _tf_kernels("densenet/", "densenet169", "d699b8f76981ab1b30698df4c175e90b",
                               "b8c4d4c20dd625c148057b9ff1c1176b"),
    "densenet201": _tf_kernels("densenet/", "densenet201", "1ceb130c1ea1b78c3bf6114dbdfd8807",
                               "c13680b51ded0fb44dff2d8f86ac8bb1"),
    "vgg16": _tf_kernels("vgg16/", "vgg16", "64373286793e3c8b2b4e3219cbf3544b", "6d6bbae143d832006294945121d1f1fc"),
    "vgg19": _tf_kernels("vgg19/", "vgg19", "cbe5617147190e668d6c5d5026f83318", "253f8cb515780f3b799900260a226db6"),
    "inception_v3": _tf_kernels("inception_v3/", "inception_v3", "9a0d58056eeedaa3f26cb7ebd46da564",
                                "bcbd6486424b2319ff4ef7d526e38f63"),
    # keras.applications checks no hash for MobileNetV2's files.
    "mobilenet_v2": ImagenetFiles(_STORAGE + "mobilenet_v2/", f"{_MOBILENET_V2}.h5", None,
                                  f"{_MOBILENET_V2}_no_top.h5", None),
    # keras.applications' efficientnet_v2.py: efficientnetv2-b0.h5, efficientnetv2-s_notop.h5 ...
    **{f"efficientnet_v2_{size}": ImagenetFiles(_STORAGE + "efficientnet_v2/", f"efficientnetv2-{size}.h5", top,
                                                f"efficientnetv2-{size}_notop.h5", notop)
       for size, top, notop in (
           ("b0", "21ecbf6da12460d5c40bb2f29ceb2188", "893217f2bb855e2983157299931e43ff"),
           ("b1", "069f0534ff22adf035c89e2d9547a9dc", "0e80663031ca32d657f9caa404b6ec37"),
           ("b2", "424e49f28180edbde1e94797771950a7", "1dfe2e7a5d45b6632553a8961ea609eb"),
           ("b3", "1f1fc43bd98a6e4fd8fdfd551e02c7a0", "f6abf7b5849ac99a89b50dd3fd532856"),
           ("s", "e1d88a8495beba45748fedd0cecbe016", "af0682fb74e8c54910f2d4393339c070"),
           ("m", "a3bf6aa3276309f4fc6a34aa114c95cd", "1b8dc055df72dde80d614482840fe342"),
           ("l", "27e6d408b53c7ebc868fefa357689935", "b0b66b5c863aef5b46e8608fe1711615"))},
    # keras.applications' mobilenet.py: alpha 1.0 at 224 (the file it takes for any other input size too);
    # no hash is checked.
    "mobilenet_v1": ImagenetFiles(_STORAGE + "mobilenet/", "mobilenet_1_0_224_tf.h5", None,
                                  "mobilenet_1_0_224_tf_no_top.h5", None),
    # mobilenet_v3.py: alpha 1.0, not minimalistic; the notop files are its "_no_top_v2" ones.
    **{f"mobilenet_v3_{kind}": ImagenetFiles(_STORAGE + "mobilenet_v3/",
                                             f"weights_mobilenet_v3_{kind}_224_1.0_float.h5", top,
                                             f"weights_mobilenet_v3_{kind}_224_1.0_float_no_top_v2.h5", notop)
       for kind, top, notop in (
           ("small", "8768d4c2e7dee89b9d02b2d03d65d862", "d3e8ec802a04aa4fc771ee12a9a9b836"),
           ("large", "59e551e166be033d707958cf9e29a6a7", "07fb09a5933dd0c8eaafa16978110389"))},
    # efficientnet.py: efficientnetb0.h5 ... efficientnetb7_notop.h5, in another bucket than the others.
    **{f"efficientnet_{size}": ImagenetFiles("https://storage.googleapis.com/keras-applications/",
                                             f"efficientnet{size}.h5", top, f"efficientnet{size}_notop.h5", notop,
                                             stddev_as_variance=True)
       for size, top, notop in (
           ("b0", "902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
           ("b1", "1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
           ("b2", "b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
           ("b3", "ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
           ("b4", "18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
           ("b5", "ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
           ("b6", "165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
           ("b7", "8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"))},
    "xception": _tf_kernels("xception/", "xception", "0a58e3b7378bc2990ea3b43d5981f1f6",
                            "b0042744bf5b25fce3cb969f33bebb97"),
    "inception_resnet_v2": _tf_kernels("inception_resnet_v2/", "inception_resnet_v2",
                                       "e693bd0210a403b3192acc6073ad2e96", "d19885ff4a710c122648d3b5c3b684e4"),
    # nasnet.py: cached as nasnet_mobile.h5, fetched from NASNet-mobile.h5.
    **{f"nasnet_{size}": ImagenetFiles(_STORAGE + "nasnet/", f"nasnet_{size}.h5", top, f"nasnet_{size}_no_top.h5",
                                       notop,
                                       remote={f"nasnet_{size}.h5": f"NASNet-{size}.h5",
                                               f"nasnet_{size}_no_top.h5": f"NASNet-{size}-no-top.h5"})
       for size, top, notop in (
           ("mobile", "020fb642bf7360b370c678b08e0adf61", "1ed92395b5b598bdda52abe5c0dbfd63"),
           ("large", "11577c9a518f0070763c2b964a382f17", "d81d89dc07e6e56530c4e77faddd61b5"))},
}

IMAGENET_CLASSES = 1000
CACHE_SUBDIR = "models"


def cache_dir() -> Path:
    """The folder keras.utils.get_file keeps these files in: ``$KERAS_HOME/models`` or ``~/.keras/models``.

    As in Keras, a home that is missing or unwritable falls back to ``/tmp/.keras``. ``KERAS_HOME`` is read
    when this is called (Keras itself reads it once, when it is imported).
    """
    base = Path(os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")))
    if not os.access(base, os.W_OK):
        base = Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / ".keras"
    return base / CACHE_SUBDIR


def zoo_network(architecture: Architecture) -> str | None:
    """The zoo network with ImageNet files that ``architecture`` is, or extends (through ``extends:``)."""
    path = architecture.source
    zoo = zoo_dir().resolve()
    for _ in range(32):
        if path is None:
            break
        if path.resolve().parent == zoo and path.stem in IMAGENET_FILES:
            return path.stem
        try:
            document = load_file(path)
            base = document.get("extends") if isinstance(document, Map) else None
            if not isinstance(base, str):
                break
            path = path.parent / base if (path.parent / base).is_file() else find(base)
        except (SpecError, UsageError):
            break
    return architecture.name if architecture.name in IMAGENET_FILES else None


def network_of(architecture: Architecture) -> str:
    """Like :func:`zoo_network`, raising a ``CommandError`` that lists the choices when there is none."""
    network = zoo_network(architecture)
    if network is None:
        raise CommandError(f"weights imagenet: {architecture.name} is not a zoo network with keras.applications "
                           f"ImageNet weights, and does not extend one ({', '.join(sorted(IMAGENET_FILES))})")
    return network


def candidates(architecture: Architecture) -> list[tuple[str, str | None]]:
    """The two files of the architecture's network, the better fit first: the top file when it keeps the
    1000-class classifier, else the smaller file without it. Each is ``(file name, md5 hash)``."""
    files = IMAGENET_FILES[network_of(architecture)]
    keeps_top = "head" not in architecture.document and architecture.classes in (None, IMAGENET_CLASSES)
    pairs = [(files.top, files.top_hash), (files.notop, files.notop_hash)]
    return pairs if keeps_top else pairs[::-1]


def _md5_ok(path: Path, expected: str | None) -> bool:
    if expected is None:
        return True
    digest = hashlib.sha256() if len(expected) == 64 else hashlib.md5()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == expected


def fetch(architecture: Architecture) -> Path:
    """The ImageNet weight file for ``architecture``: a valid one from the Keras cache, else downloaded.

    Raises:
        CommandError: neither works; the message names the file, its address and the cache folder.
    """
    files = IMAGENET_FILES[network_of(architecture)]
    folder = cache_dir()
    pairs = candidates(architecture)
    for name, expected in pairs:
        if (folder / name).is_file() and _md5_ok(folder / name, expected):
            return folder / name
    name, expected = pairs[0]
    cached = folder / name
    state = (f"is in the Keras cache ({cached}) but its md5 hash is not keras.applications' ({expected})"
             if cached.is_file() else f"is not in the Keras cache ({folder})")
    try:
        return _download(name, files.url(name), expected, folder.parent)
    except Exception as exc:  # get_file raises bare Exception for network errors; the user needs one line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CommandError(f"weights imagenet: {name} {state}, and downloading it from {files.url(name)} failed "
                           f"({reason}); put the file there, or give another source with --weights") from None


def _download(name: str, url: str, expected: str | None, base: Path) -> Path:
    import keras

    # get_file prints its progress; stdout may carry a command's JSON, so it goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        return Path(keras.utils.get_file(name, url, file_hash=expected, cache_subdir=CACHE_SUBDIR,
                                         cache_dir=str(base)))
