"""What becomes of a claimed job: completed, retried later, dead, handed back, progress.

Every statement here is conditional on the row still being held by this worker (state
``consumed``, its ``worker_id``), so repeating one after a lost connection is harmless and
a job rescued meanwhile is never touched by its old attempt. Completions of jobs that did
not use the database are group-committed: one statement per batch, one event per queue.
Each carries the time its attempt started running (the claim set ``started_at`` earlier,
possibly while the job waited in the worker's window).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from app.store.channels import ETA_PAYLOAD, announce, notify_events

# ``started_at >= since`` (the batch's earliest claim) bounds the read of queue_leased_idx
# (worker_id, started_at) to what the worker claimed since: keyed by worker only, it walked
# every job the worker had run that a held xmin horizon keeps (migration 0021).
COMPLETE_MANY = f"""
WITH done AS (
    UPDATE dramatiq.queue q
    SET "state" = 'done', mtime = now(), "result" = coalesce(d.result, q.result),
        started_at = pgjobs.started_between(q.started_at, d.started),
        unique_until = CASE WHEN q.unique_key IS NULL THEN NULL
            ELSE now() + make_interval(
                secs => coalesce((q.message->'options'->>'unique_window')::float8, 0)) END
    FROM unnest(%(ids)b::uuid[], %(results)b::jsonb[], %(starts)b::timestamptz[])
         AS d(message_id, result, started)
    WHERE q.message_id = d.message_id AND q."state" = 'consumed' AND q.worker_id = %(worker)s
      AND q.started_at >= coalesce(%(since)s::timestamptz, '-infinity')
    RETURNING q.message_id, q.queue_name
)
{announce("'completed'", "done")}
"""

RETRY = f"""
UPDATE dramatiq.queue
SET "state" = 'queued', queue_name = %(queue)s, eta = now() + make_interval(secs => %(delay)s),
    last_error = %(error)s, worker_id = NULL, mtime = now(),
    started_at = pgjobs.started_between(started_at, %(started)s)
WHERE message_id = %(id)s AND "state" = 'consumed' AND worker_id = %(worker)s
RETURNING pg_notify('dramatiq.' || queue_name || '.enqueue', {ETA_PAYLOAD}),
          {notify_events("'retrying'", "json_build_array(message_id)", "queue_name")}
"""

DEAD = f"""
UPDATE dramatiq.queue
SET "state" = 'rejected', last_error = %(error)s, mtime = now(), unique_until = now(),
    started_at = pgjobs.started_between(started_at, %(started)s)
WHERE message_id = %(id)s AND "state" = 'consumed' AND worker_id = %(worker)s
RETURNING {notify_events("'dead'", "json_build_array(message_id)", "queue_name")}
"""

# Hand claimed-but-unstarted jobs back, not counting the attempt.
HAND_BACK = """
WITH back AS (
    UPDATE dramatiq.queue
    SET "state" = 'queued', worker_id = NULL, attempts = greatest(attempts - 1, 0),
        mtime = now()
    WHERE message_id = ANY(%(ids)s::uuid[]) AND "state" = 'consumed' AND worker_id = %(worker)s
    RETURNING queue_name
)
SELECT pg_notify('dramatiq.' || queue_name || '.enqueue', '') FROM back GROUP BY queue_name
"""

# Autocommit, outside the job's transaction: visible while the job runs.
PROGRESS = f"""
UPDATE dramatiq.queue
SET progress = %(progress)s, progress_message = %(message)s
WHERE message_id = %(id)s AND "state" = 'consumed' AND worker_id = %(worker)s
RETURNING {notify_events("'progress'", "json_build_array(message_id)", "queue_name")}
"""


def complete_many(
    conn: psycopg.Connection[Any], ids: Sequence[uuid.UUID], results: Sequence[Jsonb | None],
    starts: Sequence[datetime | None], worker: uuid.UUID, since: datetime | None = None,
) -> None:
    """``starts``: when each attempt started running (None: keep the claim's time).
    ``since``: at or before every job's claim, on the database's clock (None: no bound)."""
    conn.execute(COMPLETE_MANY, {"ids": list(ids), "results": list(results),
                                 "starts": list(starts), "worker": worker,
                                 "since": since})


def retry(
    conn: psycopg.Connection[Any], job: uuid.UUID | str, delayed_queue: str, delay: float,
    error: str, worker: uuid.UUID, started: datetime | None = None,
) -> None:
    conn.execute(RETRY, {"id": job, "queue": delayed_queue, "delay": delay, "error": error,
                         "worker": worker, "started": started})


def dead(
    conn: psycopg.Connection[Any], job: uuid.UUID | str, error: str, worker: uuid.UUID,
    started: datetime | None = None,
) -> None:
    conn.execute(DEAD, {"id": job, "error": error, "worker": worker, "started": started})


def hand_back(
    conn: psycopg.Connection[Any], ids: Sequence[uuid.UUID | str], worker: uuid.UUID
) -> None:
    conn.execute(HAND_BACK, {"ids": list(ids), "worker": worker})


def progress(
    conn: psycopg.Connection[Any], job: uuid.UUID | str, percent: int, message: str | None,
    worker: uuid.UUID,
) -> bool:
    """Record progress; False when this worker no longer holds the job."""
    return conn.execute(PROGRESS, {"id": job, "progress": percent, "message": message,
                                   "worker": worker}).rowcount == 1
