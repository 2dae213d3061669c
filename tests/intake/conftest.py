"""Fixtures of the intake tests: a real uvicorn server on a free port, tenants with endpoints.

The server runs the real ASGI app in a thread of the test process (so each test's own
database and settings apply); the end-to-end tests start ``python -m app.intake`` instead.
"""

from __future__ import annotations

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
