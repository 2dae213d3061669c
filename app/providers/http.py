"""What the HTTP provider adapters share: one client per timeout, error classification.

A connection that never opened cannot have delivered anything (``maybe_sent=False``); a
request that went out and then timed out or lost its connection may have been accepted
(``maybe_sent=True``), so the caller reconciles before sending again.
"""

from __future__ import annotations

import email.utils
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from app.providers.outbound import TransientProviderError

_clients: dict[tuple[float, float], httpx.Client] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    total: float = 10.0


def client(timeouts: Timeouts) -> httpx.Client:
    """A shared, thread-safe client (connection pooling) per pair of timeouts."""
    key = (timeouts.connect, timeouts.total)
    with _lock:
        found = _clients.get(key)
        if found is None:
            found = _clients[key] = httpx.Client(
                timeout=httpx.Timeout(timeouts.total, connect=timeouts.connect),
                follow_redirects=False,
            )
        return found


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), None when absent or bad."""
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def transport_error(provider: str, exc: httpx.TransportError) -> TransientProviderError:
    """A network failure, classified by whether the request may have reached the provider."""
    never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return TransientProviderError(
        provider, f"{type(exc).__name__} talking to the provider",
        maybe_sent=not never_sent,
    )


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or an empty dict when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
