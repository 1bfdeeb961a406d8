"""``blockbuilder explore``: draw a digit in the browser and watch every layer of a trained CNN respond.

A small standard-library HTTP server (bound to 127.0.0.1 unless told otherwise) serves one page and
one endpoint. ``POST /predict`` takes an image's bytes (the canvas as PNG, or an uploaded file) and
returns JSON: the class probabilities and, for every layer, its activations as a PNG data URL,
computed by one Keras sub-model that outputs every layer at once.

Every answer is JSON, errors too (``{"error": "one line"}``): an upload that is not an image, or has
more than ``MAX_PIXELS`` pixels, gets 400; a missing ``Content-Length`` 411; one that is not a number
400; one over ``MAX_UPLOAD`` bytes 413, sent before the body is read. The server never reads more than
``MAX_UPLOAD`` bytes of a body into memory, whatever the headers say. After answering, it closes the
connection gracefully: what the client still sends is read in 64 KiB pieces and dropped (at most
``DRAIN_LIMIT`` bytes for at most ``LINGER`` seconds), so the client sees the answer rather than a reset.
A client that stops sending in the middle of a request is dropped after ``READ_TIMEOUT`` seconds.

Example:
    >>> serve("runs/lenet5", port=8000)   # then open http://127.0.0.1:8000/
"""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from blockbuilder.errors import ImageError, shown
from blockbuilder.images import Preprocessing, read_image

MAX_UPLOAD = 2 * 1024 * 1024    # bytes of one upload
MAX_PIXELS = 4096 * 4096        # pixels of one uploaded image, checked before it is decoded
MAX_LAYERS = 48                 # beyond this, only the top-level blocks' outputs are shown
DRAIN_LIMIT = 64 * 1024 * 1024  # bytes read and dropped after an answer (a too-large body), at most
LINGER = 2.0                    # seconds spent on that, at most
READ_TIMEOUT = 30.0             # seconds a client may pause while sending a request
TILE = 4                        # feature maps per side of a layer's tile


class Explorer:
    """A trained model wrapped for the page: predictions and per-layer activation images.

    Args:
        source: A ``ModelSource`` (``blockbuilder.serving.source.load_source``).
    """

    def __init__(self, source: Any) -> None:
        import keras

        self.model = source.model
        self.input_shape = tuple(int(s) for s in self.model.inputs[0].shape[1:])
        self.preprocessing = Preprocessing.for_input(self.input_shape)
        self.layers = shown_layers(self.model)
        inputs = self.model.inputs[0] if len(self.model.inputs) == 1 else self.model.inputs
        self.probe = keras.Model(inputs, [layer.output for layer in self.layers] + [self.model.outputs[0]])
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


# -- the server -------------------------------------------------------------------------------------


class Refused(Exception):
    """A request answered with an HTTP error status and a one-line message."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def content_length(values: list[str] | None) -> int:
    """The body size a request announces, checked: at most ``MAX_UPLOAD``.

    Raises:
        Refused: 411 without the header, 400 when it is not one whole number, 413 when it is too large.
    """
    if not values:
        raise Refused(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required: send the image's bytes")
    texts = {value.strip() for value in values}
    if len(texts) > 1:
        raise Refused(HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers")
    text = texts.pop()
    if not re.fullmatch(r"[0-9]{1,19}", text):
        raise Refused(HTTPStatus.BAD_REQUEST, f"Content-Length must be a number of bytes, got {shown(text)}")
    length = int(text)
    if length > MAX_UPLOAD:
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                      f"upload too large: {length:,} bytes (at most {MAX_UPLOAD:,})")
    return length


def handler_for(explorer: Any, read_timeout: float = READ_TIMEOUT) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``explorer`` (an :class:`Explorer`, or anything with its
    ``answer``, ``input_shape``, ``class_names`` and ``layers``)."""
    page = PAGE_HTML.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        server_version = "blockbuilder-explore"
        default_request_version = "HTTP/1.0"  # even a garbled request line gets a status line and headers
        timeout = read_timeout  # the socket's: a stalled client is dropped, never waited on forever

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif self.path == "/info":
                self._json(HTTPStatus.OK, {"input_shape": list(explorer.input_shape),
                                           "classes": explorer.class_names,
                                           "layers": [layer.name for layer in explorer.layers]})
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"not found: {shown(self.path)}"})

        def do_POST(self) -> None:  # noqa: N802
            try:
                body = self._body()
                if self.path != "/predict":
                    raise Refused(HTTPStatus.NOT_FOUND, f"not found: {shown(self.path)}")
            except Refused as refused:
                self._json(refused.status, {"error": str(refused)})
                return
            try:
                answer = explorer.answer(body)
            except ImageError as exc:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            except Exception as exc:  # the model itself failed: answered, and reported in one line on stderr
                self.server.handle_error(self.request, self.client_address)
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"the model failed on this image: {exc}"})
            else:
                self._json(HTTPStatus.OK, answer)

        def _body(self) -> bytes:
            """The request's body: at most ``MAX_UPLOAD`` bytes are read, whatever the headers say."""
            try:
                length = content_length(self.headers.get_all("Content-Length"))
            except Refused:
                self.close_connection = True  # the body, if any, is dropped by the server's lingering close
                raise
            data = self.rfile.read(length)
            if len(data) < length:
                self.close_connection = True
                raise Refused(HTTPStatus.BAD_REQUEST, f"upload cut short: {len(data):,} of {length:,} bytes")
            return data

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's own errors (a malformed request line, too many headers ...) as JSON too."""
            status = HTTPStatus(code)
            if status == HTTPStatus.NOT_IMPLEMENTED:  # a method this server has no handler for
                status, message = HTTPStatus.METHOD_NOT_ALLOWED, f"method {shown(self.command)} not allowed"
            self.close_connection = True
            self._json(status, {"error": message or status.phrase})

        def _json(self, status: HTTPStatus, answer: dict[str, Any]) -> None:
            self._send(status, json.dumps(answer).encode("utf-8"), "application/json")

        def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if status == HTTPStatus.METHOD_NOT_ALLOWED:
                self.send_header("Allow", "GET, POST")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
            pass

    return Handler


class ExploreServer(ThreadingHTTPServer):
    """The HTTP server: one thread per request; a failure in one is one line on stderr, never a traceback.

    ``errors`` keeps those lines (the tests read them).
    """

    daemon_threads = True

    def __init__(self, host: str, port: int) -> None:
        super().__init__((host, port), BaseHTTPRequestHandler)
        self.errors: list[str] = []

    def shutdown_request(self, request: Any) -> None:
        """Close gracefully: send FIN, drop what the client still sends (bounded), then close.

        Closing a socket with unread data sends a reset, which can destroy the answer before the client
        reads it (a 413 to an upload still under way, say).
        """
        try:
            request.shutdown(socket.SHUT_WR)
            deadline, left = time.monotonic() + LINGER, DRAIN_LIMIT
            while left > 0 and (remaining := deadline - time.monotonic()) > 0:
                request.settimeout(remaining)
                chunk = request.recv(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:  # the client has gone: nothing to be graceful to
            pass
        self.close_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):  # the client went away or stalled
            return
        line = f"explore: request from {client_address[0]} failed: {type(error).__name__}: {error}"
        self.errors.append(line)
        print(line, file=sys.stderr)


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


PAGE_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>blockbuilder explore</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .6em}
#top{display:flex;gap:2em;align-items:flex-start;flex-wrap:wrap}
#pad{border:1px solid #888;background:#000;touch-action:none;cursor:crosshair}
.controls{margin-top:.5em;display:flex;gap:.6em;align-items:center}
#prediction{min-width:16em}
#prediction .best{font-size:2.2em;font-weight:bold}
.class{display:flex;align-items:center;gap:.5em;font-size:.9em;margin:.1em 0}
.class .bar{height:.8em;background:#3b6fb6;border-radius:2px}
.class .name{width:5em;text-align:right;overflow:hidden}
#error{color:#b00020;margin-top:.5em;min-height:1.2em}
#layers{display:flex;flex-wrap:wrap;gap:1em;margin-top:1.2em}
.layer{background:#fff;border:1px solid #ddd;border-radius:4px;padding:.4em;text-align:center;font-size:.75em}
.layer img{image-rendering:pixelated;display:block;margin:.3em auto 0;max-width:220px;min-width:120px}
.layer img.strip{height:14px;width:220px}
</style></head>
<body>
<h1>blockbuilder explore: draw a digit, watch every layer respond</h1>
<div id="top">
 <div>
  <canvas id="pad" width="280" height="280"></canvas>
  <div class="controls">
   <button id="clear">clear</button>
   <label>or upload an image <input id="upload" type="file" accept="image/*"></label>
  </div>
  <div id="error"></div>
 </div>
 <div id="prediction"><div class="best" id="best">?</div><div id="classes">draw in the black square</div></div>
</div>
<div id="layers"></div>
<script>
const pad = document.getElementById('pad'), ctx = pad.getContext('2d');
let drawing = false, busy = false, pending = false, last = null;
function clearPad(){ctx.fillStyle='#000';ctx.fillRect(0,0,pad.width,pad.height);}
clearPad();
ctx.lineCap='round';ctx.lineJoin='round';ctx.lineWidth=26;ctx.strokeStyle='#fff';
function point(e){const r=pad.getBoundingClientRect();return [e.clientX-r.left,e.clientY-r.top];}
pad.addEventListener('pointerdown',e=>{drawing=true;last=point(e);stroke(last);});
pad.addEventListener('pointermove',e=>{if(!drawing)return;const p=point(e);stroke(p);});
window.addEventListener('pointerup',()=>{if(drawing){drawing=false;request();}});
function stroke(p){ctx.beginPath();ctx.moveTo(last[0],last[1]);ctx.lineTo(p[0],p[1]);ctx.stroke();last=p;request();}
document.getElementById('clear').onclick=()=>{clearPad();request();};
document.getElementById('upload').onchange=e=>{const f=e.target.files[0];if(f)send(f);};
function request(){if(busy){pending=true;return;}pad.toBlob(send,'image/png');}
async function send(blob){
  busy=true;
  try{
    const kind=blob.type||'application/octet-stream';
    const r=await fetch('/predict',{method:'POST',body:blob,headers:{'Content-Type':kind}});
    if(!r.ok){document.getElementById('error').textContent=(await r.json()).error;return;}
    document.getElementById('error').textContent='';
    show(await r.json());
  }catch(err){document.getElementById('error').textContent=String(err);}
  finally{busy=false;if(pending){pending=false;request();}}
}
function show(a){
  document.getElementById('best').textContent=a.classes[0].name;
  const c=document.getElementById('classes');c.innerHTML='';
  for(const k of a.classes){
    const row=document.createElement('div');row.className='class';
    row.innerHTML='<span class="name"></span><span class="bar"></span><span class="p"></span>';
    row.children[0].textContent=k.name;row.children[1].style.width=(k.probability*12)+'em';
    row.children[2].textContent=(100*k.probability).toFixed(1)+' %';c.appendChild(row);
  }
  const box=document.getElementById('layers');box.innerHTML='';
  for(const l of a.layers){
    const d=document.createElement('div');d.className='layer';
    const t=document.createElement('div');t.textContent=l.name+'  '+l.shape.join('×');
    const i=document.createElement('img');i.src=l.image;i.alt=l.name;
    if(l.shape.length===1)i.className='strip';
    d.appendChild(t);d.appendChild(i);box.appendChild(d);
  }
}
</script>
</body></html>
"""
