"""Tenant-scoped control of waiting and delayed jobs: cancel, reschedule.

Both go through ``SECURITY DEFINER`` functions (migration 0007) that touch only the
caller's tenant's rows and lock them, so a worker claiming the job at the same instant
either has it already (reported as ``running``) or never sees it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import psycopg

CANCEL = "SELECT message_id, outcome FROM pgjobs.cancel_jobs(%(ids)s::uuid[], %(reason)s)"
RESCHEDULE = "SELECT pgjobs.reschedule_job(%(id)s, %(eta)s)"


def cancel(
    conn: psycopg.Connection, ids: Sequence[uuid.UUID], reason: str
) -> dict[uuid.UUID, str]:
    """Outcome per visible job: ``cancelled``, ``running`` or ``finished``."""
    rows = conn.execute(CANCEL, {"ids": list(ids), "reason": reason}).fetchall()
    return {row[0]: row[1] for row in rows}


def reschedule(conn: psycopg.Connection, job_id: uuid.UUID, eta: datetime) -> str | None:
    """``rescheduled``, ``running``, ``finished``, or None if the tenant has no such job."""
    row = conn.execute(RESCHEDULE, {"id": job_id, "eta": eta}).fetchone()
    return row[0] if row else None
