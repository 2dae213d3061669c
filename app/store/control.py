"""Control of waiting, delayed and finished jobs: cancel, reschedule, run again.

One implementation per transition, in the database (``pgjobs._cancel``, ``_reschedule``,
``_rerun``, migration 0012), used two ways: tenant code through the tenant-scoped entry
points (``pgjobs.cancel_jobs`` etc.: the caller's tenant's rows and no other), operators
(the owner) directly for any job. Each locks the rows it changes, so a worker claiming a
job at the same instant either has it already (reported as ``running``) or never sees it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

CANCEL = "SELECT message_id, outcome FROM pgjobs.cancel_jobs(%(ids)s::uuid[], %(reason)s)"
RESCHEDULE = "SELECT pgjobs.reschedule_job(%(id)s, %(eta)s)"
RETRY = "SELECT message_id, outcome FROM pgjobs.retry_jobs(%(ids)s::uuid[])"

# The owner's paths: any tenant (p_tenant NULL).
OPERATOR_CANCEL = "SELECT * FROM pgjobs._cancel(%(ids)s::uuid[], %(reason)s, NULL)"
OPERATOR_RERUN = "SELECT * FROM pgjobs._rerun(%(ids)s::uuid[], %(states)s::text[], NULL)"
OPERATOR_RESCHEDULE = "SELECT * FROM pgjobs._reschedule(%(ids)s::uuid[], %(eta)s, NULL)"


@dataclass(frozen=True)
class Changed:
    """What a control function did to one job (``outcome``) and which job it was."""

    message_id: uuid.UUID
    outcome: str
    queue: str
    actor_name: str | None
    tenant_id: uuid.UUID | None


def cancel(
    conn: psycopg.Connection[Any], ids: Sequence[uuid.UUID], reason: str
) -> dict[uuid.UUID, str]:
    """Tenant: outcome per visible job, ``cancelled``, ``running`` or ``finished``."""
    rows = conn.execute(CANCEL, {"ids": list(ids), "reason": reason}).fetchall()
    return {row[0]: row[1] for row in rows}


def reschedule(conn: psycopg.Connection[Any], job_id: uuid.UUID, eta: datetime) -> str | None:
    """Tenant: ``rescheduled``, ``running``, ``finished``, or None if it has no such job."""
    row = conn.execute(RESCHEDULE, {"id": job_id, "eta": eta}).fetchone()
    return row[0] if row else None


def retry(conn: psycopg.Connection[Any], ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Tenant: run its dead letters again; ``rerun``, ``key_held`` or the status per job."""
    rows = conn.execute(RETRY, {"ids": list(ids)}).fetchall()
    return {row[0]: row[1] for row in rows}


def _changed(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> list[Changed]:
    with conn.cursor(row_factory=class_row(Changed)) as cur:
        return cur.execute(query, params).fetchall()


def operator_cancel(
    conn: psycopg.Connection[Any], ids: Sequence[uuid.UUID], reason: str
) -> list[Changed]:
    return _changed(conn, OPERATOR_CANCEL, {"ids": list(ids), "reason": reason})


def operator_rerun(
    conn: psycopg.Connection[Any], ids: Sequence[uuid.UUID], states: Sequence[str]
) -> list[Changed]:
    """Run finished jobs whose status is in ``states`` (done, dead, cancelled) again."""
    return _changed(conn, OPERATOR_RERUN, {"ids": list(ids), "states": list(states)})


def operator_reschedule(
    conn: psycopg.Connection[Any], ids: Sequence[uuid.UUID], eta: datetime
) -> list[Changed]:
    return _changed(conn, OPERATOR_RESCHEDULE, {"ids": list(ids), "eta": eta})
