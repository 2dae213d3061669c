"""A fake Slack Web API (``POST /api/chat.postEphemeral``).

Answers like Slack: HTTP 200 with ``{"ok": false, "error": ...}`` for a bad token
(``invalid_auth``), a missing argument (``invalid_arguments``) or an unknown channel
(``channel_not_found``); ``rate_limit(n)`` makes the next ``n`` calls HTTP 429 with
``Retry-After``. ``posted`` keeps every ephemeral message shown, with its workspace.
"""

from __future__ import annotations

from typing import Any

from app.fakes.base import Answer, FakeServer, Received


class FakeSlack(FakeServer):
    name = "fake-slack"

    def __init__(self, *, retry_after: float = 1.0) -> None:
        super().__init__()
        #: bot token -> team id
        self.tokens: dict[str, str] = {}
        self.missing_channels: set[str] = set()
        self.retry_after = retry_after
        self._limit_next = 0
        self.posted: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}/api"

    def add_workspace(self, team_id: str, token: str) -> None:
        self.tokens[token] = team_id

    def rate_limit(self, calls: int) -> None:
        with self.lock:
            self._limit_next = calls

    def answer(self, request: Received) -> Answer:
        with self.lock:
            if self._limit_next > 0:
                self._limit_next -= 1
                return Answer(429, {"ok": False, "error": "ratelimited"},
                              {"Retry-After": f"{self.retry_after:g}"})
        token = (request.headers.get("authorization") or "").removeprefix("Bearer ")
        team = self.tokens.get(token)
        if not token:
            return Answer(200, {"ok": False, "error": "not_authed"})
        if team is None:
            return Answer(200, {"ok": False, "error": "invalid_auth"})
        if request.path != "/api/chat.postEphemeral":
            return Answer(200, {"ok": False, "error": "unknown_method"})
        body = request.json or {}
        if not all(body.get(k) for k in ("channel", "user", "text")):
            return Answer(200, {"ok": False, "error": "invalid_arguments"})
        if body["channel"] in self.missing_channels:
            return Answer(200, {"ok": False, "error": "channel_not_found"})
        with self.lock:
            self.posted.append({"team": team, **body})
            ts = f"1700000000.{len(self.posted):06d}"
        return Answer(200, {"ok": True, "message_ts": ts})
