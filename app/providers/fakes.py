"""Local fake SMS (Twilio-style) and WhatsApp (Cloud API-style) providers, for tests and the demo.

Each is a real HTTP server on ``127.0.0.1`` and a free port, in a thread of the process that
starts it, speaking the same protocol as the adapters' real counterparts, and recording what
it receives. Like a careful provider it deduplicates on the ``Idempotency-Key`` header (a
repeated key gets the first message back with ``Idempotent-Replayed: true`` and sends nothing)
and can be asked what it sent under a key. Tests script it: ``invalid`` / ``unsubscribed``
numbers are refused with the provider's error codes, ``next_responses`` answers the next
sends with throttling or server errors, ``on_accept`` runs right after a message is accepted
and before the answer goes out (to kill the worker at the worst moment).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from app.fakes.base import LocalServer


@dataclass(frozen=True)
class Received:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass(frozen=True)
class Sent:
    """One message the fake accepted (sent to its recipient)."""

    message_id: str
    recipient: str
    text: str
    idempotency_key: str | None
    at: float


@dataclass(frozen=True)
class Scripted:
    """An answer for a coming send: ``status`` with ``error`` (code, message) and headers."""

    status: int
    code: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def throttled(retry_after: float) -> Scripted:
    return Scripted(429, 0, "Too Many Requests", {"Retry-After": f"{retry_after:g}"})


def server_error() -> Scripted:
    return Scripted(503, 0, "Service Unavailable")


class FakeProvider(LocalServer):
    """The server and its records; subclasses speak one provider's protocol."""

    kind = "fake"

    def __init__(self, *, token: str = "fake-token") -> None:
        super().__init__()
        self.name = f"fake-{self.kind}"
        self.token = token
        self.requests: list[Received] = []
        self.sent: list[Sent] = []
        self.by_key: dict[str, Sent] = {}
        self.invalid: set[str] = set()
        self.unsubscribed: set[str] = set()
        self.next_responses: deque[Scripted] = deque()
        self.on_accept: Callable[[Sent], None] | None = None
        self.lock = threading.Lock()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        self._handle(handler, handler.command)

    def sends(self) -> list[Received]:
        """The send requests received (repeats with the same key included)."""
        with self.lock:
            return [r for r in self.requests if r.method == "POST"]

    def sent_to(self, recipient: str) -> list[Sent]:
        with self.lock:
            return [s for s in self.sent if s.recipient == recipient]

    # -- protocol ----------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        parsed = urlparse(handler.path)
        body = self._parse(handler.headers.get("Content-Type", ""), raw)
        if method == "GET":
            body = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        received = Received(method, parsed.path, dict(handler.headers.items()), body,
                            time.time())
        with self.lock:
            self.requests.append(received)
        status, payload, headers = self._route(received)
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            for name, value in headers.items():
                handler.send_header(name, value)
            data = json.dumps(payload).encode()
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client is gone (e.g. the worker was killed on purpose)

    @staticmethod
    def _parse(content_type: str, raw: bytes) -> dict[str, Any]:
        if not raw:
            return {}
        if "json" in content_type:
            try:
                value = json.loads(raw)
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}

    def _route(self, r: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        raise NotImplementedError

    def _error(self, status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def _send(
        self, r: Received, recipient: str, text: str,
        accepted: Callable[[Sent], dict[str, Any]],
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Dedupe, apply the script and the refusal rules, accept, answer."""
        key = r.headers.get("Idempotency-Key")
        with self.lock:
            if key and key in self.by_key:
                return 200, accepted(self.by_key[key]), {"Idempotent-Replayed": "true"}
            scripted = self.next_responses.popleft() if self.next_responses else None
        if scripted is not None:
            status, payload = self._error(scripted.status, scripted.code, scripted.message)
            return status, payload, dict(scripted.headers)
        if recipient in self.invalid:
            return (*self._invalid(), {})
        if recipient in self.unsubscribed:
            return (*self._unsubscribed(), {})
        sent = Sent(self._new_id(), recipient, text, key, time.time())
        with self.lock:
            self.sent.append(sent)
            if key:
                self.by_key[key] = sent
        if self.on_accept is not None:
            self.on_accept(sent)
        return 201, accepted(sent), {}

    def _invalid(self) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def _unsubscribed(self) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def _new_id(self) -> str:
        return uuid.uuid4().hex


class FakeTwilio(FakeProvider):
    """``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form, basic auth); lookup by key
    with ``GET ...Messages.json?IdempotencyKey=``."""

    kind = "twilio"

    def __init__(self, *, account_sid: str = "ACfake", token: str = "fake-token") -> None:
        super().__init__(token=token)
        self.account_sid = account_sid
        self.invalid = {"+15005550001"}  # Twilio's own magic numbers for these errors
        self.unsubscribed = {"+15005550004"}

    def _new_id(self) -> str:
        return "SM" + uuid.uuid4().hex

    def _error(self, status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
        return status, {"code": code or None, "message": message, "status": status}

    def _invalid(self) -> tuple[int, dict[str, Any]]:
        return self._error(400, 21211, "The 'To' number is not a valid phone number.")

    def _unsubscribed(self) -> tuple[int, dict[str, Any]]:
        return self._error(400, 21610, "Attempt to send to unsubscribed recipient")

    def _route(self, r: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        expected = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        if r.path != expected:
            return (*self._error(404, 20404, "The requested resource was not found"), {})
        auth = base64.b64encode(f"{self.account_sid}:{self.token}".encode()).decode()
        if r.headers.get("Authorization") != f"Basic {auth}":
            return (*self._error(401, 20003, "Authenticate"), {})
        if r.method == "GET":
            key = r.body.get("IdempotencyKey")
            with self.lock:
                found = [self.by_key[key]] if key in self.by_key else []
            return 200, {"messages": [self._message(s) for s in found]}, {}
        to, text = str(r.body.get("To", "")), str(r.body.get("Body", ""))
        if not to or not r.body.get("From"):
            return (*self._error(400, 21604, "A 'To' and a 'From' are required"), {})
        return self._send(r, to, text, self._message)

    @staticmethod
    def _message(sent: Sent) -> dict[str, Any]:
        return {"sid": sent.message_id, "status": "queued", "to": sent.recipient,
                "body": sent.text, "idempotency_key": sent.idempotency_key}


class FakeWhatsApp(FakeProvider):
    """``POST /{version}/{phone_number_id}/messages`` (JSON, bearer token)."""

    kind = "whatsapp_cloud"

    def __init__(self, *, phone_number_id: str = "1234567890", token: str = "fake-token") -> None:
        super().__init__(token=token)
        self.phone_number_id = phone_number_id

    def _new_id(self) -> str:
        return "wamid." + uuid.uuid4().hex

    def _error(self, status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
        code = code or (130429 if status == 429 else 131000 if status >= 500 else 100)
        return status, {"error": {"message": message, "type": "OAuthException", "code": code,
                                  "fbtrace_id": uuid.uuid4().hex[:12]}}

    def _invalid(self) -> tuple[int, dict[str, Any]]:
        return self._error(400, 131026, "Message Undeliverable.")

    def _unsubscribed(self) -> tuple[int, dict[str, Any]]:
        return self._error(400, 131050, "Unable to deliver message: the user has stopped "
                                        "receiving these messages")

    def _route(self, r: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        parts = r.path.strip("/").split("/")
        if r.method != "POST" or len(parts) != 3 or parts[1:] != [self.phone_number_id,
                                                                   "messages"]:
            return (*self._error(404, 100, "Unsupported request"), {})
        if r.headers.get("Authorization") != f"Bearer {self.token}":
            return (*self._error(401, 190, "Invalid OAuth access token"), {})
        text = r.body.get("text") if isinstance(r.body.get("text"), dict) else {}
        to, body = str(r.body.get("to", "")), str((text or {}).get("body", ""))
        if r.body.get("messaging_product") != "whatsapp" or not to or not body:
            return (*self._error(400, 100, "Invalid parameter"), {})
        return self._send(r, to, body, self._message)

    @staticmethod
    def _message(sent: Sent) -> dict[str, Any]:
        return {"messaging_product": "whatsapp",
                "contacts": [{"input": sent.recipient, "wa_id": sent.recipient.lstrip("+")}],
                "messages": [{"id": sent.message_id}]}
