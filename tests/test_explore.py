"""``blockbuilder explore``: the server's answers, bad uploads, and the page in a real headless chromium."""

from __future__ import annotations

import base64
import io
import json
import shutil
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The explorer for a lenet5 run trained one epoch through the CLI, on a free loopback port."""
    from blockbuilder.cli.main import main
    from blockbuilder.serving.explore import make_server

    run = tmp_path_factory.mktemp("explore") / "lenet5"
    assert main(["train", "lenet5", "--epochs", "1", "--output", str(run)]) == 0
    httpd = make_server(run, port=0)
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


def test_bad_uploads_get_400_with_a_message(server):
    status, body = _post(server + "/predict", b"this is not an image")
    assert (status, body.decode()) == (400, "not an image this server can read: send a PNG or JPEG file\n")
    status, body = _post(server + "/predict", b"\x89PNG" + b"0" * (3 * 1024 * 1024))
    assert status == 400 and body.decode().startswith("image too large: 3,145,732 bytes")
    status, body = _post(server + "/predict", b"")
    assert status == 400 and "empty upload" in body.decode()
    status, _ = _post(server + "/elsewhere", b"x")
    assert status == 404


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
