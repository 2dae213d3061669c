"""The job list's filters and cursor, parsed from a query string or a form, checked once.

A bad value is refused with a message naming the field (never echoing what was typed), so a
page never runs a query on input it did not understand.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from app.ops.queues import QUEUE_NAME
from app.store.dashboard import STATUSES

ACTOR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,199}")
MAX_ERROR_TEXT = 200


class BadInput(ValueError):
    """A request parameter that cannot be used; the message names it."""


def _uuid(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadInput(f"{name} must be a UUID") from None


def _time(value: str, name: str) -> datetime:
    """An ISO time; without a zone it is UTC (what every page shows)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{name} must be a date and time (YYYY-MM-DDTHH:MM, UTC)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def like_pattern(text: str) -> str:
    """``text`` anywhere, with LIKE's wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def job_ids(values: list[str]) -> list[uuid.UUID]:
    if not values:
        raise BadInput("no job selected")
    return list(dict.fromkeys(_uuid(v, "job id") for v in values))


@dataclass(frozen=True)
class Cursor:
    at: datetime
    message_id: uuid.UUID

    def encode(self) -> str:
        return f"{self.at.isoformat()}|{self.message_id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        at, sep, mid = text.partition("|")
        if not sep:
            raise BadInput("after must be a cursor from a page's next link")
        return cls(_time(at, "after"), _uuid(mid, "after"))


@dataclass(frozen=True)
class JobFilter:
    status: str = "dead"
    queue: str | None = None
    actor: str | None = None
    tenant: uuid.UUID | None = None
    error: str | None = None
    worker: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, default_status: str = "dead") -> JobFilter:
        def get(name: str) -> str | None:
            value = data.get(name)
            value = value.strip() if isinstance(value, str) else None
            return value or None

        status = get("status") or default_status
        if status not in STATUSES:
            raise BadInput(f"status must be one of {', '.join(STATUSES)}")
        queue = get("queue")
        if queue is not None and (not QUEUE_NAME.fullmatch(queue) or queue.endswith(".DQ")):
            raise BadInput("queue must be a queue name")
        actor = get("actor")
        if actor is not None and not ACTOR_NAME.fullmatch(actor):
            raise BadInput("actor must be an actor name")
        error = get("error")
        if error is not None and len(error) > MAX_ERROR_TEXT:
            raise BadInput(f"error text must be at most {MAX_ERROR_TEXT} characters")
        tenant, worker, since, until = (get(n) for n in ("tenant", "worker", "since", "until"))
        parsed = cls(
            status=status, queue=queue, actor=actor, error=error,
            tenant=_uuid(tenant, "tenant") if tenant else None,
            worker=_uuid(worker, "worker") if worker else None,
            since=_time(since, "since") if since else None,
            until=_time(until, "until") if until else None,
        )
        if parsed.since and parsed.until and parsed.since >= parsed.until:
            raise BadInput("since must be before until")
        return parsed

    def present(self) -> list[str]:
        """The optional filters that are set (each adds one predicate)."""
        return [n for n in ("queue", "actor", "tenant", "error", "worker")
                if getattr(self, n) is not None]

    def params(self) -> dict[str, Any]:
        values = {n: getattr(self, n) for n in self.present()}
        if "error" in values:
            values["error"] = like_pattern(values["error"])
        if self.since:
            values["since"] = self.since
        if self.until:
            values["until"] = self.until
        return values

    def with_status(self, status: str) -> JobFilter:
        return replace(self, status=status)

    def as_dict(self) -> dict[str, str]:
        """The filter as strings (query strings, hidden form fields, the audit record)."""
        out: dict[str, str] = {}
        for key, value in asdict(self).items():
            if value is None:
                continue
            out[key] = value.strftime("%Y-%m-%dT%H:%M") if isinstance(value, datetime) \
                else str(value)
        return out

    def query(self, **extra: str) -> str:
        return urlencode({**self.as_dict(), **extra})
