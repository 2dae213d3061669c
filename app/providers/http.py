"""One way to call a provider over httpx: shared clients, timeouts, failures classified.

Clients are cached per (base URL, timeouts) and shared by a process's worker threads
(httpx.Client is thread-safe and keeps connections alive); credentials travel per request,
so one client serves every tenant of a provider.
"""

from __future__ import annotations

import email.utils
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from app.providers.errors import PermanentError, RateLimited, RetryableError

#: 4xx statuses that are transient after all.
RETRYABLE_4XX = {408, 425}


@dataclass(frozen=True)
class Timeouts:
    """Seconds: ``connect`` to open a connection, ``read`` for the whole answer to arrive."""

    connect: float = 5.0
    read: float = 30.0

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(self.read, connect=self.connect)


_clients: dict[tuple[str, Timeouts], httpx.Client] = {}
_lock = threading.Lock()


def client(base_url: str, timeouts: Timeouts) -> httpx.Client:
    """The process's client for ``base_url``."""
    key = (base_url.rstrip("/"), timeouts)
    found = _clients.get(key)
    if found is None:
        with _lock:
            found = _clients.get(key)
            if found is None:
                found = _clients[key] = httpx.Client(
                    base_url=key[0], timeout=timeouts.httpx(),
                    headers={"User-Agent": "pgjobs/0.1"}, follow_redirects=False,
                )
    return found


def close_clients() -> None:
    with _lock:
        for found in _clients.values():
            found.close()
        _clients.clear()


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds: delta-seconds (``2``, ``2.0``) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_detail(response: httpx.Response) -> tuple[str, str | None]:
    """(text, code) from a provider's error body: JSON fields when there are, else a reason."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.reason_phrase or "error", None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # OpenAI-style {"error": {"message", "code", "type"}}
            code = err.get("code") or err.get("type")
            return str(err.get("message") or code or "error"), str(code) if code else None
        if isinstance(err, str):  # Slack-style {"ok": false, "error": "invalid_auth"}
            return err, err
        if "errors" in body:  # Shopify: a string, a list or a dict of messages
            return _flatten(body["errors"]), None
        if "code" in body:  # WooCommerce / WordPress: {"code", "message", "data"}
            return str(body.get("message") or body["code"]), str(body["code"])
    return response.reason_phrase or "error", None


def _flatten(errors: Any) -> str:
    if isinstance(errors, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in errors.items())
    if isinstance(errors, list):
        return ", ".join(_flatten(e) for e in errors)
    return str(errors)


def send(
    http: httpx.Client, provider: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """Make one request; a 2xx response, or a classified ``ProviderError``."""
    try:
        response = http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise RetryableError(provider, f"timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise RetryableError(provider, f"connection failed ({type(exc).__name__})") from None
    status = response.status_code
    if status < 300:
        return response
    if status < 400:  # not followed: credentials must not travel to another address
        raise PermanentError(provider, "unexpected redirect (check the base URL)",
                             status=status)
    detail, code = error_detail(response)
    if status == 429:
        raise RateLimited(provider, detail, code=code,
                          retry_after=retry_after(response.headers.get("Retry-After")))
    if status >= 500 or status in RETRYABLE_4XX:
        raise RetryableError(provider, detail, status=status, code=code)
    raise PermanentError(provider, detail, status=status, code=code)


def json_body(response: httpx.Response, provider: str) -> Any:
    """The response's JSON; a non-JSON 2xx is transient (a proxy's page), so retryable."""
    try:
        return response.json()
    except ValueError:
        raise RetryableError(provider, "answer is not JSON", status=response.status_code) from None
