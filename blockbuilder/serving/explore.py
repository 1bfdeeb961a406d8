"""``blockbuilder explore``: draw a digit in the browser and watch every layer of a trained CNN respond.

A small standard-library HTTP server (bound to 127.0.0.1 unless told otherwise) serves one page and
one endpoint. ``POST /predict`` takes an image's bytes (the canvas as PNG, or an uploaded file) and
returns JSON: the class probabilities and, for every layer, its activations as a PNG data URL,
computed by one Keras sub-model that outputs every layer at once. Uploads that are not images, or
larger than ``MAX_UPLOAD`` bytes, get HTTP 400 with a one-line message.

Example:
    >>> serve("runs/lenet5", port=8000)   # then open http://127.0.0.1:8000/
"""

from __future__ import annotations

import base64
import io
import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

MAX_UPLOAD = 2 * 1024 * 1024   # bytes
MAX_LAYERS = 48                # beyond this, only the top-level blocks' outputs are shown
DRAIN_LIMIT = 64 * 1024 * 1024  # a too-large body is read and dropped up to this size
TILE = 4                       # feature maps per side of a layer's tile


class BadImage(ValueError):
    """An upload that is not a usable image; answered with HTTP 400 and this message."""


class Explorer:
    """A trained model wrapped for the page: predictions and per-layer activation images.

    Args:
        source: A ``ModelSource`` (``blockbuilder.export.load_source``).
    """

    def __init__(self, source: Any) -> None:
        import keras

        self.model = source.model
        self.input_shape = tuple(int(s) for s in self.model.inputs[0].shape[1:])
        self.layers = shown_layers(self.model)
        inputs = self.model.inputs[0] if len(self.model.inputs) == 1 else self.model.inputs
        self.probe = keras.Model(inputs, [layer.output for layer in self.layers] + [self.model.outputs[0]])
        classes = int(self.model.outputs[0].shape[-1])
        self.class_names = list(source.class_names or [str(i) for i in range(classes)])
        self.lock = threading.Lock()

    def answer(self, data: bytes) -> dict[str, Any]:
        """The JSON answer for one image's bytes.

        Raises:
            BadImage: the bytes are not an image.
        """
        from blockbuilder.serving.predict import as_probabilities

        batch = decode(data, self.input_shape)[None]
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


def decode(data: bytes, input_shape: tuple[int, ...]) -> np.ndarray:
    """Image bytes as the model's input: resized, grey or RGB, ``float32`` in [0, 1].

    Raises:
        BadImage: the bytes are empty, too many or not an image.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadImage("empty upload: send the bytes of a PNG or JPEG image")
    if len(data) > MAX_UPLOAD:
        raise BadImage(f"image too large: {len(data):,} bytes (at most {MAX_UPLOAD:,})")
    height, width, channels = input_shape[-3:]
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > 4096 * 4096:
                raise BadImage(f"image too large: {image.width}×{image.height} pixels")
            image = _flatten_alpha(image).convert("L" if channels == 1 else "RGB")
            pixels = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, BadImage):
            raise
        raise BadImage("not an image this server can read: send a PNG or JPEG file") from exc
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    return np.clip(pixels / 255.0, 0.0, 1.0).astype(np.float32)


def _flatten_alpha(image: Any) -> Any:
    """A transparent image on black (the digits the model learned are light strokes on black)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        from PIL import Image

        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba)
    return image


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
    return (rgba[..., :3] * 255).astype(np.uint8)


def data_url(out: np.ndarray) -> str:
    """A layer's output as a ``data:image/png;base64,...`` URL."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(activation_image(out)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# -- the server -------------------------------------------------------------------------------------


def handler_for(explorer: Explorer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``explorer``."""
    page = PAGE_HTML.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        server_version = "blockbuilder-explore"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif self.path == "/info":
                info = {"input_shape": list(explorer.input_shape), "classes": explorer.class_names,
                        "layers": [layer.name for layer in explorer.layers]}
                self._send(HTTPStatus.OK, json.dumps(info).encode(), "application/json")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/predict":
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
                return
            try:
                answer = explorer.answer(self._body())
            except BadImage as exc:
                self._send(HTTPStatus.BAD_REQUEST, f"{exc}\n".encode(), "text/plain; charset=utf-8")
                return
            self._send(HTTPStatus.OK, json.dumps(answer).encode(), "application/json")

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_UPLOAD:
                self._discard(length)
                raise BadImage(f"image too large: {length:,} bytes (at most {MAX_UPLOAD:,})")
            return self.rfile.read(length)

        def _discard(self, length: int) -> None:
            """Read (and drop) a too-large body so that the client sees the 400 rather than a reset."""
            self.close_connection = True
            left = min(length, DRAIN_LIMIT)
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)

        def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
            pass

    return Handler


def make_server(model_or_run_dir: Any, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A ready server for a run directory, ``.keras`` file or ``ModelSource`` (``port=0``: any free port).

    Raises:
        ExportError: the model cannot be read.
    """
    from blockbuilder.serving.export import ModelSource, load_source

    source = model_or_run_dir if isinstance(model_or_run_dir, ModelSource) else load_source(model_or_run_dir)
    server = ThreadingHTTPServer((host, port), handler_for(Explorer(source)))
    server.daemon_threads = True
    return server


def serve(model_or_run_dir: Any, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the explorer until interrupted (Ctrl-C)."""
    server = make_server(model_or_run_dir, host, port)
    address, bound = server.server_address[:2]
    print(f"explore: serving http://{address}:{bound}/ (Ctrl-C to stop)", flush=True)
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
    if(!r.ok){document.getElementById('error').textContent=await r.text();return;}
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
