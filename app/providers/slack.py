"""A Slack Web API client: what the assistant needs (``chat.postEphemeral``).

Slack answers most failures with HTTP 200 and ``{"ok": false, "error": "<code>"}``; rate
limits come as HTTP 429 with ``Retry-After``. Codes that say "try later" are retryable,
every other code (a revoked token, a channel the bot is not in) is permanent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from app.config import env_number
from app.providers import http
from app.providers.errors import PermanentError, RateLimited, RetryableError

PROVIDER = "slack"
RETRYABLE_CODES = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                   "request_timeout"}
#: Slack cuts message text at 40,000 characters; we keep clear of it.
MAX_TEXT = 39_000


@dataclass(frozen=True)
class SlackSettings:
    base_url: str
    timeouts: http.Timeouts

    @classmethod
    def from_env(cls) -> SlackSettings:
        read = env_number("SLACK_TIMEOUT_SECONDS", 10.0)
        return cls(base_url=os.environ.get("SLACK_API_BASE_URL", "https://slack.com/api"),
                   timeouts=http.Timeouts(connect=5.0, read=read))


class SlackClient:
    """One workspace's client: ``token`` is its bot token (``xoxb-...``)."""

    def __init__(self, settings: SlackSettings, token: str) -> None:
        self.settings = settings
        self._token = token

    def __repr__(self) -> str:
        return f"SlackClient(base_url={self.settings.base_url!r})"

    def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """Call Web API ``method`` with a JSON body; the answer when ``ok``."""
        response = http.send(
            http.client(self.settings.base_url, self.settings.timeouts), PROVIDER, "POST",
            f"/{method}", json=body,
            headers={"Authorization": f"Bearer {self._token}",
                     "Content-Type": "application/json; charset=utf-8"},
        )
        data = http.json_body(response, PROVIDER)
        if not isinstance(data, dict):
            raise RetryableError(PROVIDER, f"{method}: answer is not an object")
        if data.get("ok"):
            return data
        code = str(data.get("error") or "unknown_error")
        if code == "ratelimited":
            wait = http.retry_after(response.headers.get("Retry-After"))
            raise RateLimited(PROVIDER, f"{method}: {code}", code=code, retry_after=wait,
                              status=response.status_code)
        cls = RetryableError if code in RETRYABLE_CODES else PermanentError
        raise cls(PROVIDER, f"{method}: {code}", status=response.status_code, code=code)

    def post_ephemeral(
        self, *, channel: str, user: str, text: str, thread_ts: str | None = None
    ) -> str:
        """Show ``text`` to ``user`` only, in ``channel`` (in a thread when ``thread_ts``);
        returns Slack's ``message_ts``."""
        body: dict[str, Any] = {"channel": channel, "user": user, "text": text[:MAX_TEXT]}
        if thread_ts:
            body["thread_ts"] = thread_ts
        return str(self.call("chat.postEphemeral", body).get("message_ts") or "")
