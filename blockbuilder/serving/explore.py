"""``blockbuilder explore``: draw a digit in the browser and watch every layer of a trained CNN respond.

A small standard-library HTTP server (bound to 127.0.0.1 unless told otherwise) serves one page and
one endpoint (``blockbuilder.serving.explore_server``). ``POST /predict`` takes an image's bytes (the
canvas as PNG, or an uploaded file) and returns JSON: the class probabilities and, for every layer, its
activations as a PNG data URL, computed by one Keras sub-model that outputs every layer at once (the
:class:`Explorer` here). An upload with more than ``MAX_PIXELS`` pixels is refused before it is decoded.

Example:
    >>> serve("runs/lenet5", port=8000)   # then open http://127.0.0.1:8000/
"""

from __future__ import annotations

import base64
import io
import threading
from typing import Any

import numpy as np

from blockbuilder.images import Preprocessing, read_image
from blockbuilder.serving.explore_server import ExploreServer, handler_for

MAX_PIXELS = 4096 * 4096        # pixels of one uploaded image, checked before it is decoded
MAX_LAYERS = 48                 # beyond this, only the top-level blocks' outputs are shown
TILE = 4                        # feature maps per side of a layer's tile


class Explorer:
    """A trained model wrapped for the page: predictions and per-layer activation images.

    Args:
        source: A ``ModelSource`` (``blockbuilder.serving.source.load_source``).
    """

    def __init__(self, source: Any) -> None:
        self.model = source.model
        self.input_shape = tuple(int(s) for s in self.model.inputs[0].shape[1:])
        self.preprocessing = Preprocessing.for_input(self.input_shape)
        from blockbuilder.serving.features import probe_model

        self.layers = shown_layers(self.model)
        self.probe = probe_model(self.model, [layer.output for layer in self.layers] + [self.model.outputs[0]])
        classes = int(self.model.outputs[0].shape[-1])
        self.class_names = list(source.class_names or [str(i) for i in range(classes)])
        self.lock = threading.Lock()

    def answer(self, data: bytes) -> dict[str, Any]:
        """The JSON answer for one image's bytes.

        Raises:
            ImageError: the bytes are not an image, or it has too many pixels.
        """
        from blockbuilder.serving.predict import as_probabilities

        batch = read_image(data, self.preprocessing, name="upload", max_pixels=MAX_PIXELS)[None]
        with self.lock:
            outputs = [np.asarray(o) for o in self.probe(batch, training=False)]
        probabilities = as_probabilities(outputs[-1])[0]
        order = np.argsort(-probabilities)
        return {
            "classes": [{"name": self.class_names[i], "probability": round(float(probabilities[i]), 5)}
                        for i in order],
            "layers": [{"name": layer.name, "shape": list(out.shape[1:]), "image": data_url(out[0])}
                       for layer, out in zip(self.layers, outputs)],
        }


def shown_layers(model: Any) -> list[Any]:
    """Every layer but the input; for very deep models, the last layer of each top-level block."""
    from blockbuilder.serving.features import layer_groups

    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    if len(layers) <= MAX_LAYERS:
        return layers
    return [group[-1] for group in layer_groups(model).values()]


def activation_image(out: np.ndarray) -> np.ndarray:
    """An 8-bit picture of one layer's output: a tile of its first maps, or a strip of its units."""
    if out.ndim == 3:
        channels = out.shape[-1]
        count = min(channels, TILE * TILE)
        columns = min(count, TILE)
        rows = -(-count // columns)
        h, w = out.shape[:2]
        canvas = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), np.nan, dtype=np.float32)
        for index in range(count):
            r, c = divmod(index, columns)
            canvas[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = _normalise(out[..., index])
        return _colour(canvas)
    flat = out.reshape(1, -1)
    return _colour(_normalise(flat))


def _normalise(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _colour(values: np.ndarray) -> np.ndarray:
    from matplotlib import colormaps

    rgba = colormaps["viridis"](np.nan_to_num(values, nan=0.0))
    rgba[np.isnan(values)] = (1.0, 1.0, 1.0, 1.0)
    pixels: np.ndarray = (rgba[..., :3] * 255).astype(np.uint8)
    return pixels


def data_url(out: np.ndarray) -> str:
    """A layer's output as a ``data:image/png;base64,...`` URL."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(activation_image(out)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# -- serving it ------------------------------------------------------------------------------------


def bind(host: str = "127.0.0.1", port: int = 8000) -> ExploreServer:
    """A server bound to ``host:port`` (``port=0``: any free port) that does not answer yet: see :func:`attach`.

    Binding comes first so that a port in use is reported before TensorFlow is loaded.

    Raises:
        OSError: the address cannot be bound (in use, not this machine's ...).
    """
    return ExploreServer(host, port)


def attach(server: ExploreServer, model_or_run_dir: Any) -> None:
    """Load the model (a run directory, ``.keras`` file or ``ModelSource``) and let ``server`` answer with it.

    Raises:
        ExportError: the model cannot be read.
    """
    from blockbuilder.serving.source import ModelSource, load_source

    source = model_or_run_dir if isinstance(model_or_run_dir, ModelSource) else load_source(model_or_run_dir)
    server.RequestHandlerClass = handler_for(Explorer(source))


def make_server(model_or_run_dir: Any, host: str = "127.0.0.1", port: int = 8000) -> ExploreServer:
    """A ready server for a run directory, ``.keras`` file or ``ModelSource`` (``port=0``: any free port).

    Raises:
        ExportError: the model cannot be read.
        OSError: the address cannot be bound.
    """
    server = bind(host, port)
    try:
        attach(server, model_or_run_dir)
    except BaseException:
        server.server_close()
        raise
    return server


def serve(model_or_run_dir: Any, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the explorer until interrupted (Ctrl-C)."""
    run_until_interrupted(make_server(model_or_run_dir, host, port))


def run_until_interrupted(server: ExploreServer) -> None:
    """Announce the address, answer requests until Ctrl-C, then close the socket."""
    address, bound = server.server_address[:2]
    print(f"explore: serving http://{address!s}:{bound}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped")
    finally:
        server.server_close()
