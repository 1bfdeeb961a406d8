"""``blockbuilder explore``: the server's answers, bad uploads, hostile HTTP, and the page in headless chromium."""

from __future__ import annotations

import base64
import io
import json
import shutil
import socket
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blockbuilder.images import Preprocessing, read_image
from blockbuilder.serving.explore import MAX_PIXELS
from blockbuilder.serving.explore_server import MAX_UPLOAD, ExploreServer, handler_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(lenet5_run):
    """The explorer for a lenet5 run trained one epoch through the CLI, on a free loopback port."""
    from blockbuilder.serving.explore import make_server

    httpd = make_server(lenet5_run, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _post(url: str, data: bytes) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _digit_png() -> bytes:
    from PIL import Image
    from sklearn.datasets import load_digits

    buffer = io.BytesIO()
    pixels = (load_digits().images[0] / 16 * 255).astype("uint8")
    Image.fromarray(pixels).resize((200, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_binds_to_loopback_by_default(server):
    assert server.startswith("http://127.0.0.1:")


def test_predict_answers_classes_and_every_layer(server):
    from PIL import Image

    status, body = _post(server + "/predict", _digit_png())
    answer = json.loads(body)
    assert status == 200
    assert sorted(c["name"] for c in answer["classes"]) == [str(i) for i in range(10)]
    assert abs(sum(c["probability"] for c in answer["classes"]) - 1) < 1e-3
    names = [layer["name"] for layer in answer["layers"]]
    assert names[:3] == ["conv1", "conv1.relu", "max_pool1"] and names[-1] == "dense3.softmax"
    conv = answer["layers"][0]
    assert conv["shape"] == [28, 28, 6] and conv["image"].startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(conv["image"].split(",", 1)[1]))) as image:
        assert image.size == (4 * 28 + 3, 2 * 28 + 1)      # 6 maps in a 4-wide tile
        assert np.asarray(image).std() > 10


def test_bad_uploads_get_a_json_error(server):
    status, body = _post(server + "/predict", b"this is not an image")
    assert (status, json.loads(body)) == (400, {"error": "upload: cannot read image (unknown image format)"})
    status, body = _post(server + "/predict", b"\x89PNG" + b"0" * (3 * 1024 * 1024))
    assert (status, json.loads(body)) == (413, {"error": "upload too large: 3,145,732 bytes (at most 2,097,152)"})
    status, body = _post(server + "/predict", b"")
    assert (status, json.loads(body)) == (400, {"error": "upload: empty image"})
    status, body = _post(server + "/elsewhere", b"x")
    assert (status, json.loads(body)) == (404, {"error": "not found: '/elsewhere'"})


def test_draw_a_stroke_in_headless_chromium(server, tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        # headless=True passes --headless; launch() always starts from a fresh temporary --user-data-dir.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS[1:])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(server + "/")
            assert page.locator("#best").text_content() == "?"
            box = page.locator("#pad").bounding_box()
            page.mouse.move(box["x"] + 140, box["y"] + 40)
            page.mouse.down()
            for y in range(40, 250, 15):
                page.mouse.move(box["x"] + 140, box["y"] + y)
            page.mouse.up()
            page.wait_for_function("document.querySelectorAll('#layers img').length === 13", timeout=20000)
            page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
            assert page.locator("#best").text_content() in [str(i) for i in range(10)]
            assert page.locator("#classes .class").count() == 10
            shot = tmp_path / "explore.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size[0] == 1100 and np.asarray(image.convert("RGB")).std() > 20


# -- hostile HTTP: raw requests to a server with a stand-in model (no TensorFlow) -----------------------


class StandIn:
    """What the handler needs of an ``Explorer``; ``answer`` reads the image for real (the one reader)."""

    input_shape = (8, 8, 1)
    class_names = ["zero", "one"]
    layers: list = []

    def answer(self, data: bytes) -> dict:
        pixels = read_image(data, Preprocessing.for_input(self.input_shape), name="upload", max_pixels=MAX_PIXELS)
        return {"classes": [{"name": "zero", "probability": 1.0}], "mean": float(pixels.mean())}


@pytest.fixture(scope="module")
def raw_server():
    """A server on a free loopback port, with a stand-in model and a 1 s read timeout."""
    httpd = ExploreServer("127.0.0.1", 0)
    httpd.RequestHandlerClass = handler_for(StandIn(), read_timeout=1.0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def exchange(port: int, request: bytes, finish: bool = True, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """Send ``request`` (then end our side when ``finish``) and read the answer to its end.

    Returns the status, the headers and the body; fails if the server drops the connection unanswered.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):  # the server answered before reading it all
            pass
        if finish:
            sock.shutdown(socket.SHUT_WR)
        received = []
        for _ in range(10_000):  # bounded: an answer is a few KiB
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            received.append(chunk)
    answer = b"".join(received)
    assert answer, "the connection was dropped without an answer"
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


def post(port: int, headers: str, body: bytes = b"", **kwargs) -> tuple[int, dict]:
    status, _, answer = exchange(port, f"POST /predict HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode() + body,
                                 **kwargs)
    return status, json.loads(answer)


def png(size: tuple[int, int] = (12, 12)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", size, 255).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("length", "status", "error"), [
    ("-1", 400, "Content-Length must be a number of bytes, got '-1'"),
    ("-5", 400, "Content-Length must be a number of bytes, got '-5'"),
    ("abc", 400, "Content-Length must be a number of bytes, got 'abc'"),
    ("1e3", 400, "Content-Length must be a number of bytes, got '1e3'"),
    ("\u00b2", 400, "Content-Length must be a number of bytes, got '\u00b2'"),  # "²": str.isdigit() says yes
    (str(MAX_UPLOAD + 1), 413, "upload too large: 2,097,153 bytes (at most 2,097,152)"),
    ("99999999999999999999999", 400, "Content-Length must be a number of bytes, got '99999999999999999999999'"),
], ids=["minus-1", "minus-5", "abc", "float", "unicode-digit", "over-limit", "huge"])
def test_bad_content_length_is_answered_before_the_body_is_read(raw_server, length: str, status: int,
                                                                  error: str) -> None:
    """The answer comes while the client is still 'sending': the server never waits for (or keeps) the body."""
    header = f"Content-Length: {length}\r\n".encode("latin-1")
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n" + b"\x89PNG" + b"0" * 1000
    got, _, body = exchange(raw_server.server_address[1], request, finish=False)

    assert (got, json.loads(body)) == (status, {"error": error})
    assert raw_server.errors == []


def test_missing_content_length_is_411(raw_server) -> None:
    assert post(raw_server.server_address[1], "", png()) == (411, {"error": "Content-Length is required: send the "
                                                                           "image's bytes"})


def test_conflicting_content_lengths_are_400(raw_server) -> None:
    image = png()
    headers = f"Content-Length: {len(image)}\r\nContent-Length: 5\r\n"
    assert post(raw_server.server_address[1], headers, image) == (400, {"error": "conflicting Content-Length "
                                                                                 "headers"})


def test_a_body_shorter_than_announced_is_400(raw_server) -> None:
    image = png()
    status, answer = post(raw_server.server_address[1], f"Content-Length: {len(image) + 10}\r\n", image)
    assert (status, answer) == (400, {"error": f"upload cut short: {len(image):,} of {len(image) + 10:,} bytes"})


def test_a_stalled_client_is_dropped_after_the_read_timeout(raw_server) -> None:
    with socket.create_connection(("127.0.0.1", raw_server.server_address[1]), timeout=10) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123")
        assert sock.recv(1024) == b""  # closed after 1 s, without waiting for the other 96 bytes
    assert raw_server.errors == []


def test_a_too_large_upload_gets_its_413_and_is_drained(raw_server) -> None:
    body = b"0" * (3 * MAX_UPLOAD)
    assert post(raw_server.server_address[1], f"Content-Length: {len(body)}\r\n", body) == \
        (413, {"error": "upload too large: 6,291,456 bytes (at most 2,097,152)"})


def test_an_image_with_too_many_pixels_is_400(raw_server) -> None:
    image = png((4097, 4096))
    status, answer = post(raw_server.server_address[1], f"Content-Length: {len(image)}\r\n", image)
    assert (status, answer) == (400, {"error": "upload: image too large (16,781,312 pixels, at most 16,777,216)"})


def test_a_good_upload_and_other_methods(raw_server) -> None:
    port, image = raw_server.server_address[1], png()
    assert post(port, f"Content-Length: {len(image)}\r\n", image)[0] == 200
    status, headers, body = exchange(port, b"DELETE /predict HTTP/1.1\r\n\r\n")
    assert (status, headers["Allow"], json.loads(body)) == (405, "GET, POST", {"error": "method 'DELETE' not allowed"})
    status, _, body = exchange(port, b"GARBAGE\r\n\r\n")
    assert status == 400 and "error" in json.loads(body)


TOKEN = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"), min_size=1,
                max_size=20)
VALUE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
LENGTH = st.one_of(st.integers(-10, 10**13).map(str), VALUE, st.just(""))
HEADER = st.one_of(st.tuples(st.just("Content-Length"), LENGTH),
                   st.tuples(st.sampled_from(["Content-Type", "Transfer-Encoding", "Expect", "Connection",
                                              "Host"]), VALUE),
                   st.tuples(TOKEN, VALUE))
BODY = st.one_of(st.binary(max_size=3000), st.just(png()), st.builds(lambda n: png()[:n], st.integers(0, 80)))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT", "HEAD", "OPTIONS"]) | TOKEN,
       path=st.sampled_from(["/predict", "/", "/info", "/index.html", "/elsewhere"]) | TOKEN.map(lambda t: "/" + t),
       headers=st.lists(HEADER, max_size=6), body=BODY, exact_length=st.booleans())
def test_any_request_gets_a_whole_answer(raw_server, method: str, path: str, headers: list, body: bytes,
                                         exact_length: bool) -> None:
    """Random methods, paths, headers and bodies: always a complete 2xx/4xx answer (JSON unless the page)."""
    if exact_length:
        headers = [*headers, ("Content-Length", str(len(body)))]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    request = f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + body

    status, answer_headers, answer = exchange(raw_server.server_address[1], request)

    assert 200 <= status < 500
    if method == "HEAD":
        assert answer == b""
    elif answer_headers["Content-Type"].startswith("text/html"):
        assert (status, method, path) in {(200, "GET", "/"), (200, "GET", "/index.html")}
    else:
        assert answer_headers["Content-Type"] == "application/json"
        assert isinstance(json.loads(answer), dict)
    assert raw_server.errors == []


def test_fifty_simultaneous_clients_are_all_answered_at_once(raw_server, capfd) -> None:
    """A burst of 50 clients, half of them ending their side after the request: every one gets its 200 in
    well under the kernel's first handshake retry (1 s), none is reset, and the server prints nothing."""
    import time

    port, image = raw_server.server_address[1], png()
    request = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(image)}\r\n\r\n".encode() + image
    count = 50
    start = threading.Barrier(count)
    results: list = [None] * count

    def client(index: int) -> None:
        start.wait()
        began = time.monotonic()
        try:
            status = exchange(port, request, finish=index % 2 == 0, timeout=20)[0]
        except OSError as error:
            status = repr(error)
        results[index] = (status, time.monotonic() - began)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert [status for status, _ in results] == [200] * count
    assert max(seconds for _, seconds in results) < 0.9
    assert raw_server.errors == []
    assert "Traceback" not in capfd.readouterr().err
