"""Store a verified delivery once and enqueue its processing, in one tenant transaction.

The row and its job commit together or not at all: a crash between them cannot leave an
event without its job or a job without its event. A second copy of the delivery (a sender's
retry, or fifty at once) meets the unique key and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.db.tenant import tenant_session
from app.jobs import enqueue
from app.services import webhook_events
from app.services.webhook_events import NewEvent

#: Called in the intake's transaction right after the row is stored, instead of enqueuing
#: ``webhooks.process`` (the Slack handlers); it enqueues whatever it needs itself.
InlineHandler = Callable[[Session, uuid.UUID], None]


@dataclass(frozen=True)
class Stored:
    webhook_event_id: uuid.UUID | None
    duplicate: bool
    job_id: str | None = None


class _Duplicate(Exception):
    """Raised inside the transaction to roll back the job enqueued for a duplicate."""


def store(
    engine: Engine, tenant: uuid.UUID, event: NewEvent, inline: InlineHandler | None = None
) -> Stored:
    """Store ``event`` with its ``webhooks.process`` job (or hand it to ``inline``)."""
    if inline is not None:
        return _store_inline(engine, tenant, event, inline)
    from app.actors.webhooks import actor_for

    process = actor_for(event.source)
    # The job goes first, so the row is written once with both ids; a duplicate (rare)
    # rolls the job back with the transaction.
    event_id = uuid.uuid4()
    try:
        with tenant_session(tenant, engine=engine) as session:
            job = enqueue(session, process, {"webhook_event_id": str(event_id)})
            if webhook_events.insert_once(session, event, event_id=event_id,
                                          job_id=job.message_id) is None:
                raise _Duplicate
    except _Duplicate:
        return Stored(None, duplicate=True)
    return Stored(event_id, duplicate=False, job_id=job.message_id)


def _store_inline(
    engine: Engine, tenant: uuid.UUID, event: NewEvent, inline: InlineHandler
) -> Stored:
    with tenant_session(tenant, engine=engine) as session:
        event_id = webhook_events.insert_once(session, event)
        if event_id is None:
            return Stored(None, duplicate=True)
        inline(session, event_id)
        webhook_events.mark(session, event_id, webhook_events.COMPLETED)
        return Stored(event_id, duplicate=False)


def store_failed(engine: Engine, tenant: uuid.UUID, event: NewEvent, error: str) -> Stored:
    """Keep a delivery whose inline handler raised, as FAILED with the error, for replay."""
    with tenant_session(tenant, engine=engine) as session:
        event_id = webhook_events.insert_once(session, event, status=webhook_events.FAILED,
                                              error=error)
        return Stored(event_id, duplicate=event_id is None)
