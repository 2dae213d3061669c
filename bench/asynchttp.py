"""The I/O-bound jobs' HTTP: a local server that answers after a fixed delay, and clients.

The server (``python -m bench.asynchttp serve PORT DELAY_MS``) is one asyncio process with
keep-alive HTTP/1.1, so thousands of requests in flight cost it almost nothing and the
figure is the job systems' concurrency, not the server's. The clients are as small as the
protocol allows, for the same reason: :class:`AsyncHttpPool` (asyncio jobs: PgQueuer, our
``async def`` actors) and :func:`get` (thread jobs: one keep-alive connection per thread).
Both read ``BENCH_HTTP_URL`` (``http://127.0.0.1:PORT/``).
"""

from __future__ import annotations

import asyncio
import http.client
import os
import sys
import threading
from urllib.parse import urlsplit

URL_ENV = "BENCH_HTTP_URL"
_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def _target() -> tuple[str, int]:
    parts = urlsplit(os.environ.get(URL_ENV, "http://127.0.0.1:1/"))
    return parts.hostname or "127.0.0.1", parts.port or 80


class AsyncHttpPool:
    """Keep-alive connections for asyncio jobs; one request per connection at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    @classmethod
    def from_env(cls) -> AsyncHttpPool:
        return cls(*_target())

    async def get(self, i: int) -> None:
        """GET /?i=..., wait for the answer; raise on anything but 200."""
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(f"GET /?i={i} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if not status.startswith(b"HTTP/1.1 200"):
            writer.close()
            raise RuntimeError(f"unexpected HTTP status {status!r}")
        self.idle.append((reader, writer))

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


_local = threading.local()


def get(i: int) -> None:
    """The thread jobs' GET on this thread's keep-alive connection."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = http.client.HTTPConnection(*_target(), timeout=30)
    try:
        conn.request("GET", f"/?i={i}")
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        _local.conn = None
        raise
    if response.status != 200:
        raise RuntimeError(f"unexpected HTTP status {response.status}")


async def serve(port: int, delay_s: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readline()
                if not request:
                    break
                while await reader.readline() not in (b"\r\n", b""):
                    pass
                await asyncio.sleep(delay_s)
                writer.write(_RESPONSE)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "serve":
        sys.exit("usage: python -m bench.asynchttp serve PORT DELAY_MS")
    asyncio.run(serve(int(sys.argv[2]), float(sys.argv[3]) / 1000))
