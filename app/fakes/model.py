"""A fake OpenAI-compatible chat completions endpoint (``POST /v1/chat/completions``).

Answers like OpenAI: the completion object, 401 for a wrong key, and for a message that
contains ``[429]`` one ``429`` with ``Retry-After`` (then success), ``[500]`` always a
server error, ``[hold]`` waits until ``release()``. Every call keeps the ``user`` it was
made for (we send the tenant), when it arrived and when it was answered.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from app.fakes.base import Answer, FakeServer, Received

RATE_LIMIT_BODY = {"error": {
    "message": "Rate limit reached for requests. Please try again in 1s.",
    "type": "requests", "param": None, "code": "rate_limit_exceeded"}}


class FakeModel(FakeServer):
    name = "fake-model"

    def __init__(self, *, api_key: str = "sk-test-model", latency: float = 0.0,
                 retry_after: float = 1.0) -> None:
        super().__init__()
        self.api_key = api_key
        self.latency = latency
        self.retry_after = retry_after
        self.released = threading.Event()
        self._limited: set[str] = set()
        self._in_flight: dict[str, int] = {}
        #: The most calls in flight at once, per user.
        self.peak: dict[str, int] = {}

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def release(self) -> None:
        self.released.set()

    def calls(self, user: str | None = None, status: int | None = 200) -> list[Received]:
        found = [r for r in self.requests("/v1/chat/completions")
                 if (user is None or (r.json or {}).get("user") == user)
                 and (status is None or r.status == status)]
        return sorted(found, key=lambda r: r.started)

    def answer(self, request: Received) -> Answer:
        if request.path != "/v1/chat/completions" or request.method != "POST":
            return Answer(404, {"error": {"message": "Unknown path",
                                          "type": "invalid_request_error"}})
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Answer(401, {"error": {"message": "Incorrect API key provided.",
                                          "type": "invalid_request_error",
                                          "code": "invalid_api_key"}})
        body: dict[str, Any] = request.json or {}
        messages = body.get("messages") or []
        last = str(messages[-1].get("content", "")) if messages else ""
        if body.get("stream"):
            return Answer(400, {"error": {"message": "this fake does not stream"}})
        if "[429]" in last:
            with self.lock:
                first = last not in self._limited
                self._limited.add(last)
            if first:
                return Answer(429, RATE_LIMIT_BODY, {"Retry-After": f"{self.retry_after:g}"})
        if "[500]" in last:
            return Answer(500, {"error": {"message": "The server had an error",
                                          "type": "server_error"}})
        user = str(body.get("user") or "")
        with self.lock:
            self._in_flight[user] = self._in_flight.get(user, 0) + 1
            self.peak[user] = max(self.peak.get(user, 0), self._in_flight[user])
        try:
            if "[hold]" in last:
                self.released.wait(60)
            if self.latency:
                time.sleep(self.latency)
        finally:
            with self.lock:
                self._in_flight[user] -= 1
        return Answer(200, {
            "id": f"chatcmpl-{len(self.received)}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": f"Suggested reply ({len(messages)} messages)"}}],
            "usage": {"prompt_tokens": 10 * len(messages), "completion_tokens": 5,
                      "total_tokens": 10 * len(messages) + 5},
        })
