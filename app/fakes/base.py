"""A threaded HTTP server on 127.0.0.1 that records every request and lets a subclass answer.

Subclasses implement ``answer(request) -> Answer``; requests are kept in ``received`` with
their arrival and answer times (``time.monotonic()`` of this process), so a test can
compute concurrency and rates as the server saw them.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    started: float
    #: Wall-clock arrival (``time.time()``), to compare with database timestamps.
    at: float = 0.0
    ended: float | None = None
    status: int | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class LocalServer:
    """The lifetime of a threaded HTTP server on 127.0.0.1 and a free port, in a thread of
    this process; a subclass answers each request in ``_serve``."""

    name = "fake"

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"{self.name}-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError


class FakeServer(LocalServer):
    """Records every request and lets a subclass answer it (``answer``)."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Received] = []
        self.lock = threading.Lock()

    # -- requests -------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        parts = urlsplit(handler.path)
        request = Received(
            method=handler.command, path=parts.path, query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=handler.rfile.read(length) if length else b"", started=time.monotonic(),
            at=time.time(),
        )
        with self.lock:
            self.received.append(request)
        try:
            answer = self.answer(request)
        except Exception as exc:  # a bug in a fake must show, not hang the client
            answer = Answer(500, {"error": f"fake failed: {exc!r}"})
        payload = b"" if answer.body is None else json.dumps(answer.body).encode()
        # Recorded before the client can read the answer (a test reads right after it).
        request.ended, request.status = time.monotonic(), answer.status
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(payload)))
        for key, value in answer.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def answer(self, request: Received) -> Answer:
        raise NotImplementedError

    def requests(self, path_prefix: str = "") -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path.startswith(path_prefix)]
