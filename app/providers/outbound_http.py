"""What the outbound-message HTTP adapters (SMS, WhatsApp) add to ``app.providers.http``:
whether a failed request may have been delivered.

A connection that never opened cannot have delivered anything (``maybe_sent=False``); a
request that went out and then timed out or lost its connection may have been accepted
(``maybe_sent=True``), so the caller reconciles before sending again.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.providers import http
from app.providers.http import Timeouts
from app.providers.outbound import TransientProviderError

__all__ = ["Timeouts", "client", "json_body", "retry_after", "transport_error"]


def client(timeouts: Timeouts) -> httpx.Client:
    """The process's shared client for these timeouts (adapters pass absolute URLs)."""
    return http.client("", timeouts)


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), None when absent or bad."""
    return http.retry_after(response.headers.get("Retry-After"))


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
