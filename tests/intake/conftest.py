"""Fixtures of the intake tests: a real uvicorn server on a free port, tenants with endpoints.

The server runs the real ASGI app in a thread of the test process (so each test's own
database and settings apply); the end-to-end tests start ``python -m app.intake`` instead.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from app.intake import admin, signatures
from app.intake.app import create_app
from app.intake.settings import IntakeSettings
from tests.support import TestDB, wait_for


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with free_socket() as sock:
        return int(sock.getsockname()[1])


@dataclass
class Intake:
    url: str
    client: httpx.Client
    app: Any

    @property
    def state(self) -> Any:
        return self.app.state.intake

    def listening(self) -> bool:
        return bool(self.state.listener.connected.is_set())


def start_server(settings: IntakeSettings | None = None) -> tuple[uvicorn.Server, Any, str,
                                                                   threading.Thread]:
    app = create_app(settings)
    sock = free_socket()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20, message="the intake server to start")
    return server, app, f"http://127.0.0.1:{sock.getsockname()[1]}", thread


@pytest.fixture
def intake(db: TestDB) -> Iterator[Intake]:
    server, app, url, thread = start_server()
    client = httpx.Client(base_url=url, timeout=20)
    intake = Intake(url, client, app)
    wait_for(intake.listening, message="the intake's LISTEN connection")
    try:
        yield intake
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=15)


@dataclass
class Sender:
    """A tenant's endpoint for one source, and what a legitimate sender knows of it."""

    tenant: uuid.UUID
    source: str
    endpoint_id: uuid.UUID
    token: str
    secret: str
    secret_id: uuid.UUID

    @property
    def path(self) -> str:
        if self.source == "slack":
            return f"/slack/events/{self.token}"
        return f"/webhooks/{self.source}/{self.token}"


def make_sender(db: TestDB, source: str = "test", *, tenant: uuid.UUID | None = None,
                key: str | None = None) -> Sender:
    tenant = tenant or db.create_tenant(f"{source}-tenant")
    endpoint = admin.add_endpoint(tenant, source, key=key)
    secret = admin.add_secret(tenant, endpoint.endpoint_id)
    return Sender(tenant, source, endpoint.endpoint_id, endpoint.token, secret.value,
                  secret.secret_id)


def body_of(payload: dict[str, Any] | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def post_signed(intake: Intake, sender: Sender, payload: dict[str, Any] | bytes, *,
                secret: str | None = None, headers: dict[str, str] | None = None,
                path: str | None = None) -> httpx.Response:
    """POST ``payload`` signed the way ``sender.source`` signs."""
    body = body_of(payload)
    key = secret if secret is not None else sender.secret
    h = {"content-type": "application/json"}
    if sender.source in ("shopify", "woocommerce"):
        name = ("X-Shopify-Hmac-Sha256" if sender.source == "shopify"
                else "X-WC-Webhook-Signature")
        h[name] = signatures.sign_base64(key, body)
    elif sender.source == "slack":
        ts = str(int(time.time()))
        h["X-Slack-Request-Timestamp"] = ts
        h["X-Slack-Signature"] = signatures.sign_slack(key, body, ts)
    else:
        h["X-Webhook-Signature"] = signatures.sign_hex(key, body)
    h.update(headers or {})
    return intake.client.post(path or sender.path, content=body, headers=h)


def counts(db: TestDB) -> dict[str, int]:
    """Rows in every table a delivery could write to."""
    return {
        "webhook_events": db.scalar("SELECT count(*) FROM webhook_events"),
        "jobs": db.scalar("SELECT count(*) FROM dramatiq.queue"),
        "activity_events": db.scalar("SELECT count(*) FROM activity_events"),
    }


class SSEClient:
    """Reads a Server-Sent Events stream in a thread; ``events`` fills as they arrive."""

    def __init__(self, url: str, token: str, last_event_id: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.events: list[dict[str, Any]] = []
        self.status: int | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=None))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self._thread.start()
        wait_for(lambda: self.status is not None, message="the stream to open")

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers) as reply:
                self._reply = reply
                self.status = reply.status_code
                event: dict[str, Any] = {}
                for line in reply.iter_lines():
                    if self._stop.is_set():
                        return
                    if not line:
                        if "data" in event:
                            self.events.append(event)
                        event = {}
                    elif line.startswith("id: "):
                        event["id"] = line[4:]
                    elif line.startswith("event: "):
                        event["event"] = line[7:]
                    elif line.startswith("data: "):
                        event["data"] = json.loads(line[6:])
        except Exception:  # closed under our feet by close(), or the server went away
            if self.status is None:
                self.status = -1

    def close(self) -> None:
        """Close the connection now (a blocked read ends at once, no keepalive awaited)."""
        self._stop.set()
        reply = getattr(self, "_reply", None)
        network = reply.extensions.get("network_stream") if reply is not None else None
        sock = network.get_extra_info("socket") if network is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)
        self._client.close()

    def source_ids(self) -> list[str]:
        return [e["data"]["source_id"] for e in self.events]
