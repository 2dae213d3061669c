"""The public enqueue API: jobs join the caller's transaction.

``enqueue(session, actor, ...)`` inserts the job row and its NOTIFY on the session's own
connection, so the job exists exactly when the caller's transaction commits. The tenant is
the session's (``tenant_session``), never a separate argument that could disagree with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
import psycopg
from dramatiq import Message
from sqlalchemy.orm import Session

from app.broker import queries
from app.broker.broker import PostgresJobsBroker
from app.db.engine import Target, raw_connection
from app.db.tenant import TENANT_KEY


@dataclass(frozen=True)
class EnqueueResult:
    message_id: str
    #: True when an existing job (same unique key) was kept and nothing new was enqueued.
    duplicate: bool



def _tenant_of(target: Target, raw: psycopg.Connection) -> str | None:
    info = target.info if isinstance(target, Session) else None
    if info is not None and TENANT_KEY in info:
        tenant = info[TENANT_KEY]
        return str(tenant) if tenant else None
    row = raw.execute("SELECT current_setting('app.tenant_id', true)").fetchone()
    return row[0] or None if row else None


def _delay_ms(delay: float | None, eta: datetime | None) -> int | None:
    if eta is not None:
        if eta.tzinfo is None:
            raise ValueError(f"eta must be timezone-aware, got {eta!r}")
        delay = (eta - datetime.now(UTC)).total_seconds()
    if delay is None or delay <= 0:
        return None
    return int(delay * 1000)


def enqueue(
    target: Target,
    actor: dramatiq.Actor,
    *args: Any,
    delay: float | None = None,
    eta: datetime | None = None,
    priority: int | None = None,
    unique_key: str | None = None,
    limit_key: str | None = None,
    **kwargs: Any,
) -> EnqueueResult:
    """Enqueue ``actor(*args, **kwargs)`` in ``target``'s transaction.

    ``delay`` is in seconds; ``eta`` an aware datetime. With ``unique_key``, a job already
    holding the key (queued, delayed, running, or finished within its window) is returned
    instead and nothing is enqueued. ``limit_key`` overrides the key the queue's rate and
    concurrency limits count this job under (by default its tenant).
    """
    options: dict[str, Any] = {}
    if priority is not None:
        options["priority"] = priority
    if unique_key is not None:
        options["unique_key"] = unique_key
    if limit_key is not None:
        options["limit_key"] = limit_key
    return _enqueue(target, actor, [(args, kwargs)], _delay_ms(delay, eta), options)[0]


def enqueue_many(
    target: Target,
    actor: dramatiq.Actor,
    items: Iterable[tuple[Sequence[Any], dict[str, Any]]],
    *,
    delay: float | None = None,
    priority: int | None = None,
    limit_key: str | None = None,
) -> list[EnqueueResult]:
    """Enqueue one job per ``(args, kwargs)`` item in one statement."""
    options: dict[str, Any] = {} if priority is None else {"priority": priority}
    if limit_key is not None:
        options["limit_key"] = limit_key
    return _enqueue(target, actor, list(items), _delay_ms(delay, None), options)


def _enqueue(
    target: Target,
    actor: dramatiq.Actor,
    items: list[tuple[Sequence[Any], dict[str, Any]]],
    delay: int | None,
    options: dict[str, Any],
) -> list[EnqueueResult]:
    broker = actor.broker
    if not isinstance(broker, PostgresJobsBroker):
        raise TypeError(f"actor {actor.actor_name!r} is not bound to a PostgresJobsBroker")
    raw = raw_connection(target)
    tenant = _tenant_of(target, raw)
    if tenant is not None:
        options["tenant_id"] = tenant
    messages = [
        actor.message_with_options(args=tuple(args), kwargs=kwargs, **options)
        for args, kwargs in items
    ]
    inserted = broker.enqueue_on(raw, [(m, delay) for m in messages])
    results = []
    for message in messages:
        if message.message_id in inserted:
            results.append(EnqueueResult(message.message_id, duplicate=False))
        else:
            results.append(_existing(broker, raw, message, delay))
    return results


def _existing(
    broker: PostgresJobsBroker, raw: psycopg.Connection, message: Message, delay: int | None
) -> EnqueueResult:
    """The job that made this insert a no-op; a finished job past its window yields its key."""
    key = message.options.get("unique_key")
    if key is None:
        return EnqueueResult(message.message_id, duplicate=True)
    params = {"tenant": message.options.get("tenant_id"), "key": key}
    row = raw.execute(queries.FIND_UNIQUE, params).fetchone()
    if row is not None and row[1] in ("done", "rejected") and not row[2]:
        if raw.execute(queries.RELEASE_UNIQUE, params).rowcount and broker.enqueue_on(
            raw, [(message, delay)]
        ):
            return EnqueueResult(message.message_id, duplicate=False)
        row = raw.execute(queries.FIND_UNIQUE, params).fetchone()
    return EnqueueResult(str(row[0]) if row else message.message_id, duplicate=True)
