"""Reading jobs by id: status, progress, result, error. Under the caller's Row-Level Security.

The caller's connection decides what is visible: a tenant session sees its tenant's jobs
only, the owner (operations) sees all. Nothing here filters by tenant in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from app.store.rows import JobInfo

JOBS = """
SELECT message_id, regexp_replace(queue_name, '\\.DQ$', '') AS queue,
       queue_name LIKE '%%.DQ' AS delayed, "state"::text AS state, cancelled_at IS NOT NULL
           AS cancelled,
       actor_name, tenant_id, priority, attempts, max_attempts, progress, progress_message,
       "result", last_error, unique_key, eta, enqueued_at, started_at,
       CASE WHEN "state" IN ('done', 'rejected') THEN mtime END AS finished_at
FROM dramatiq.queue
WHERE message_id = ANY(%(ids)s::uuid[])
"""

# The finished ones among ``ids``: one query per wake-up, however many jobs are awaited.
FINISHED = JOBS + """  AND "state" IN ('done', 'rejected')"""


def _status(state: str, delayed: bool, cancelled: bool) -> str:
    if state == "queued":
        return "delayed" if delayed else "waiting"
    if state == "consumed":
        return "active"
    if state == "done":
        return "completed"
    return "cancelled" if cancelled else "dead"


def _info(row: dict[str, Any]) -> JobInfo:
    status = _status(row.pop("state"), row.pop("delayed"), row.pop("cancelled"))
    row["message_id"] = str(row["message_id"])
    return JobInfo(status=status, **row)


def jobs(
    conn: psycopg.Connection[Any], ids: Sequence[str], *, finished_only: bool = False
) -> dict[str, JobInfo]:
    """The visible jobs among ``ids``, by id (one query)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(FINISHED if finished_only else JOBS, {"ids": list(ids)})
        return {job.message_id: job for job in map(_info, rows)}
