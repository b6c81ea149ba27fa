"""Real loopback peers for tests: an HTTP server that records what it receives."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class PeerResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Handler = Callable[[RecordedRequest], PeerResponse]


class HttpPeer:
    """A threaded HTTP server on 127.0.0.1 that records requests and answers by route.

    ``peer.route("POST", "/grants", lambda req: PeerResponse(201, {"ok": True}))`` sets an
    answer; unrouted requests get 200 ``{"ok": true}``. ``peer.requests`` lists what arrived.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._routes: dict[tuple[str, str], Handler] = {}
        self._lock = threading.Lock()
        peer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = RecordedRequest(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with peer._lock:
                    peer.requests.append(request)
                response = peer._dispatch(request)
                if response.delay:
                    time.sleep(response.delay)
                payload = response.body
                if isinstance(payload, (bytes, bytearray)):
                    data = bytes(payload)
                    ctype = "application/octet-stream"
                elif isinstance(payload, str):
                    data = payload.encode()
                    ctype = "text/plain"
                else:
                    data = json.dumps({"ok": True} if payload is None else payload).encode()
                    ctype = "application/json"
                self.send_response(response.status)
                headers = {"Content-Type": ctype, **response.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, method: str, path: str, handler: Handler | PeerResponse) -> None:
        self._routes[(method.upper(), path)] = handler if callable(handler) else (lambda _req, r=handler: r)

    def _dispatch(self, request: RecordedRequest) -> PeerResponse:
        path = request.path.split("?", 1)[0]
        handler = self._routes.get((request.method, path)) or self._routes.get(("*", path))
        if handler is None:
            return PeerResponse()
        return handler(request)

    def received(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path.split("?", 1)[0] == path)
            ]

    def start(self) -> HttpPeer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
