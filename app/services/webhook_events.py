"""The ``webhook_events`` table and its state machine: every statement on it lives here.

A delivery is stored once per (tenant, source, external event id), ENQUEUED with its
processing job; the job moves it to PROCESSING then COMPLETED in its own transaction, and
the job's failure hook to FAILED with the error (committed after the attempt rolled back).
A replay puts it back to ENQUEUED with a new job. Rows are always written for the tenant of
the session (``pgjobs.current_tenant()``), never for a tenant the caller names.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from app.db.engine import Target, raw_connection

ENQUEUED, PROCESSING, COMPLETED, FAILED = "ENQUEUED", "PROCESSING", "COMPLETED", "FAILED"
STATUSES = (ENQUEUED, PROCESSING, COMPLETED, FAILED)

_COLUMNS = """id, tenant_id, source, external_event_id, event_type, payload, headers, status,
    error, attempts, job_id, endpoint_id, content_type, received_at, started_at, processed_at"""


@dataclass(frozen=True)
class NewEvent:
    """A verified delivery, as the intake stores it."""

    source: str
    external_event_id: str
    event_type: str
    payload: dict[str, Any]
    headers: dict[str, str]
    raw_body: bytes
    content_type: str
    endpoint_id: uuid.UUID | None = None


@dataclass(frozen=True)
class StoredEvent:
    id: uuid.UUID
    tenant_id: uuid.UUID
    source: str
    external_event_id: str
    event_type: str
    payload: dict[str, Any]
    headers: dict[str, str]
    status: str
    error: str | None
    attempts: int
    job_id: uuid.UUID | None
    endpoint_id: uuid.UUID | None
    content_type: str | None
    received_at: datetime
    started_at: datetime | None
    processed_at: datetime | None


INSERT_ONCE = """
INSERT INTO webhook_events (id, tenant_id, source, external_event_id, event_type, payload,
                            headers, raw_body, content_type, endpoint_id, status, error,
                            processed_at, job_id)
VALUES (coalesce(%(id)s, gen_random_uuid()), pgjobs.current_tenant(), %(source)s,
        %(external_event_id)s, %(event_type)s, %(payload)s, %(headers)s, %(raw_body)s,
        %(content_type)s, %(endpoint_id)s, %(status)s, %(error)s,
        CASE WHEN %(status)s = 'ENQUEUED' THEN NULL ELSE now() END, %(job)s)
ON CONFLICT (tenant_id, source, external_event_id) DO NOTHING
RETURNING id
"""
MARK = """
UPDATE webhook_events SET status = %(status)s, processed_at = now(), error = %(error)s
WHERE id = %(id)s
"""
START = f"""
UPDATE webhook_events
SET status = 'PROCESSING', attempts = attempts + 1, started_at = now(), processed_at = NULL
WHERE id = %(id)s AND status <> 'COMPLETED'
RETURNING {_COLUMNS}
"""
COMPLETE = """
UPDATE webhook_events SET status = 'COMPLETED', processed_at = now(), error = NULL
WHERE id = %(id)s
"""
# The failed attempt's own increment rolled back with it: count it again here.
FAIL = """
UPDATE webhook_events
SET status = 'FAILED', error = left(%(error)s, 4000), attempts = attempts + 1,
    processed_at = now()
WHERE id = %(id)s AND status <> 'COMPLETED'
"""
REPLAY = """
UPDATE webhook_events SET status = 'ENQUEUED', job_id = %(job)s, error = NULL,
    processed_at = NULL
WHERE id = %(id)s
"""
GET = f"SELECT {_COLUMNS} FROM webhook_events WHERE id = %(id)s"
LOCK = f"SELECT {_COLUMNS} FROM webhook_events WHERE id = %(id)s FOR UPDATE"
LIST = f"""
SELECT {_COLUMNS} FROM webhook_events
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(source)s::text IS NULL OR source = %(source)s)
  AND (%(tenant)s::uuid IS NULL OR tenant_id = %(tenant)s)
ORDER BY received_at DESC LIMIT %(limit)s
"""
TENANT_OF = "SELECT tenant_id FROM webhook_events WHERE id = %(id)s"


def insert_once(
    target: Target, event: NewEvent, *, status: str = ENQUEUED, error: str | None = None,
    event_id: uuid.UUID | None = None, job_id: str | None = None,
) -> uuid.UUID | None:
    """Store ``event`` for the session's tenant; None when it was stored before (a duplicate).

    ``event_id`` and ``job_id`` let a caller enqueue the processing job first and store the
    row with both ids in one statement (one round trip fewer than an insert, then an update).
    """
    row = raw_connection(target).execute(INSERT_ONCE, {
        "id": event_id, "job": uuid.UUID(job_id) if job_id else None,
        "source": event.source, "external_event_id": event.external_event_id,
        "event_type": event.event_type, "payload": Jsonb(event.payload),
        "headers": Jsonb(event.headers), "raw_body": event.raw_body,
        "content_type": event.content_type, "endpoint_id": event.endpoint_id,
        "status": status, "error": error,
    }).fetchone()
    return row[0] if row else None


def mark(target: Target, event_id: uuid.UUID, status: str, error: str | None = None) -> None:
    """Settle an event the intake handled itself (a Slack handler took it, or raised)."""
    raw_connection(target).execute(MARK, {"id": event_id, "status": status, "error": error})


def start(target: Target, event_id: uuid.UUID) -> StoredEvent | None:
    """PROCESSING for this attempt (row locked until the job commits); None if completed/gone."""
    cur = raw_connection(target).cursor(row_factory=class_row(StoredEvent))
    return cur.execute(START, {"id": event_id}).fetchone()


def complete(target: Target, event_id: uuid.UUID) -> None:
    raw_connection(target).execute(COMPLETE, {"id": event_id})


def fail(target: Target, event_id: uuid.UUID, error: str) -> None:
    raw_connection(target).execute(FAIL, {"id": event_id, "error": error})


def replay(target: Target, event_id: uuid.UUID, job_id: str) -> None:
    raw_connection(target).execute(REPLAY, {"id": event_id, "job": uuid.UUID(job_id)})


def get(target: Target, event_id: uuid.UUID, *, lock: bool = False) -> StoredEvent | None:
    cur = raw_connection(target).cursor(row_factory=class_row(StoredEvent))
    return cur.execute(LOCK if lock else GET, {"id": event_id}).fetchone()


def list_events(
    target: Target, *, status: str | None = None, source: str | None = None,
    tenant: uuid.UUID | None = None, limit: int = 50,
) -> list[StoredEvent]:
    cur = raw_connection(target).cursor(row_factory=class_row(StoredEvent))
    return cur.execute(LIST, {"status": status, "source": source, "tenant": tenant,
                              "limit": limit}).fetchall()


def tenant_of(target: Target, event_id: uuid.UUID) -> uuid.UUID | None:
    """The event's tenant, for an operator connection that sees every tenant's rows."""
    row = raw_connection(target).execute(TENANT_OF, {"id": event_id}).fetchone()
    return row[0] if row else None

