"""The HTTP side of ``blockbuilder explore``: the request handler and the server.

Every answer is JSON, errors too (``{"error": "one line"}``): an upload that is not an image, or has
more than ``MAX_PIXELS`` pixels (``blockbuilder.serving.explore``), gets 400; a missing
``Content-Length`` 411; one that is not a number 400; one over ``MAX_UPLOAD`` bytes 413, sent before the
body is read. The server never reads more than ``MAX_UPLOAD`` bytes of a body into memory, whatever the
headers say. After answering, it closes the connection gracefully: what the client still sends is read
in 64 KiB pieces and dropped (at most ``DRAIN_LIMIT`` bytes for at most ``LINGER`` seconds), so the
client sees the answer rather than a reset. A client that stops sending in the middle of a request is
dropped after ``READ_TIMEOUT`` seconds.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from blockbuilder.errors import ImageError, shown
from blockbuilder.serving.explore_page import PAGE_HTML

MAX_UPLOAD = 2 * 1024 * 1024    # bytes of one upload
DRAIN_LIMIT = 64 * 1024 * 1024  # bytes read and dropped after an answer (a too-large body), at most
LINGER = 2.0                    # seconds spent on that, at most
READ_TIMEOUT = 30.0             # seconds a client may pause while sending a request


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
    """The HTTP server: one daemon thread per request; a failure in one is one line on stderr, never a traceback.

    Connections not yet accepted wait in a listen queue as long as the system allows (``SOMAXCONN``,
    capped by ``net.core.somaxconn``): with socketserver's default of 5, a burst of clients overflowed
    it, and the kernel dropped their handshakes (retried after 1, 3, 7 s) or reset them.
    ``errors`` keeps those lines (the tests read them).
    """

    daemon_threads = True
    request_queue_size = socket.SOMAXCONN

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
