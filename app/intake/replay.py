"""Replaying a stored webhook event: process its stored payload again, for its own tenant.

The operator names an event id; its tenant is looked up on the operator's connection (or
given), and everything else happens in that tenant's ``tenant_session``: the row goes back
to ENQUEUED with a new ``webhooks.process`` job, both in one transaction (a Slack event
whose kind has an inline handler is handed to that handler again instead).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.config import get_settings
from app.db.connections import connect
from app.db.tenant import tenant_session
from app.jobs import enqueue
from app.jobs.results import get_jobs
from app.services import webhook_events

#: Job statuses that mean the event's job will still run: a replay would only race it.
LIVE_JOB = ("waiting", "delayed", "retrying", "active")


class ReplayError(LookupError):
    """The event is unknown, or its state rules a replay out (the message says why)."""

    def __init__(self, message: str, *, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


@dataclass(frozen=True)
class Replayed:
    webhook_event_id: uuid.UUID
    tenant_id: uuid.UUID
    job_id: str | None
    previous_status: str


def find_tenant(event_id: uuid.UUID) -> uuid.UUID | None:
    """The event's tenant, read by the operator (owner) connection."""
    with connect(get_settings().database_url, name="pgjobs-intake-replay") as conn:
        return webhook_events.tenant_of(conn, event_id)


def replay(event_id: uuid.UUID, *, tenant: uuid.UUID | None = None,
           force: bool = False) -> Replayed:
    from app.actors.webhooks import actor_for
    from app.intake.slack import SLACK_HANDLERS, SlackEvent

    tenant = tenant or find_tenant(event_id)
    if tenant is None:
        raise ReplayError(f"no webhook event {event_id}", unknown=True)
    with tenant_session(tenant) as session:
        row = webhook_events.get(session, event_id, lock=True)
        if row is None:
            raise ReplayError(f"no webhook event {event_id} for tenant {tenant}", unknown=True)
        if not force:
            _check(session, row)
        handler = SLACK_HANDLERS.get(row.event_type) if row.source == "slack" else None
        if handler is not None:
            team = row.payload.get("team_id") or (row.payload.get("team") or {}).get("id", "")
            handler(session, SlackEvent(tenant_id=tenant, team_id=str(team),
                                        event_id=row.external_event_id, kind=row.event_type,
                                        payload=row.payload, webhook_event_id=row.id))
            webhook_events.mark(session, row.id, webhook_events.COMPLETED)
            return Replayed(row.id, tenant, None, row.status)
        job = enqueue(session, actor_for(row.source), {"webhook_event_id": str(row.id)})
        webhook_events.replay(session, row.id, job.message_id)
        return Replayed(row.id, tenant, job.message_id, row.status)


def _check(session: object, row: webhook_events.StoredEvent) -> None:
    if row.status == webhook_events.COMPLETED:
        raise ReplayError(f"webhook event {row.id} is COMPLETED already (--force to process "
                          "it again)")
    if row.job_id is not None:
        job = get_jobs([row.job_id], db=session).get(str(row.job_id))  # type: ignore[arg-type]
        if job is not None and job.status in LIVE_JOB:
            raise ReplayError(f"webhook event {row.id} is {row.status} and its job "
                              f"{row.job_id} is still {job.status}: it will be processed "
                              "(--force to enqueue another)")
