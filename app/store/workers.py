"""Worker processes and their leases: register, heartbeat, rescue, hand back on shutdown.

A worker's lease is stored with it (``lease_expires_at``, renewed by each heartbeat with the
worker's own lease length), so the rescuer judges every worker by its own lease, whatever
its own setting. Rows held by a worker whose lease ran out (or whose row is gone: a
neighbour saw its process die) go back to their queue, or to the dead letters when their
attempts are used up (a job that keeps killing its worker must not loop).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import class_row

from app.store.channels import announce
from app.store.rows import Neighbour, Rescued

REGISTER = """
INSERT INTO dramatiq.workers (worker_id, hostname, pid, queues, host_key, process_started,
                              lease_seconds, lease_expires_at)
VALUES (%(worker)s, %(hostname)s, %(pid)s, %(queues)s, %(host_key)s, %(process_started)s,
        %(lease)s, now() + make_interval(secs => %(lease)s))
ON CONFLICT (worker_id) DO UPDATE
SET heartbeat_at = now(), queues = EXCLUDED.queues, lease_seconds = EXCLUDED.lease_seconds,
    lease_expires_at = EXCLUDED.lease_expires_at
"""

HEARTBEAT = """
UPDATE dramatiq.workers
SET heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => lease_seconds)
WHERE worker_id = %(worker)s
"""

METRICS_PORT = "UPDATE dramatiq.workers SET metrics_port = %(port)s WHERE worker_id = %(worker)s"

# Other workers this one can see the processes of (same boot and PID namespace).
NEIGHBOURS = """
SELECT worker_id, pid, process_started FROM dramatiq.workers
WHERE host_key = %(host_key)s AND worker_id <> %(worker)s
"""

# Workers found dead by a neighbour: their rows go, so the next rescue takes their jobs.
FORGET = "DELETE FROM dramatiq.workers WHERE worker_id = ANY(%(workers)s)"

UNREGISTER = "DELETE FROM dramatiq.workers WHERE worker_id = %(worker)s"

# Hand back every job a stopping worker still holds (it will not finish them).
RELEASE = """
WITH back AS (
    UPDATE dramatiq.queue SET "state" = 'queued', worker_id = NULL, mtime = now(),
        last_error = 'worker stopped before the job finished'
    WHERE "state" = 'consumed' AND worker_id = %(worker)s
    RETURNING queue_name
)
SELECT pg_notify('dramatiq.' || queue_name || '.enqueue', '') FROM back GROUP BY queue_name
"""

RESCUE = f"""
WITH lost AS (
    SELECT worker_id FROM dramatiq.workers WHERE lease_expires_at < now()
), orphans AS (
    SELECT q.message_id, q.worker_id FROM dramatiq.queue q
    WHERE q."state" = 'consumed' AND q.worker_id IS NOT NULL
      AND (q.worker_id IN (SELECT worker_id FROM lost)
           OR NOT EXISTS (SELECT 1 FROM dramatiq.workers w WHERE w.worker_id = q.worker_id))
    FOR UPDATE OF q SKIP LOCKED
), rescued AS (
    UPDATE dramatiq.queue q
    SET "state" = CASE WHEN q.attempts >= coalesce(q.max_attempts, 2147483647)
                       THEN 'rejected'::dramatiq.state ELSE 'queued'::dramatiq.state END,
        last_error = CASE WHEN q.attempts >= coalesce(q.max_attempts, 2147483647)
                          THEN 'worker lost during the last attempt (' || q.attempts
                               || ' attempts used)'
                          ELSE 'worker lost during attempt ' || q.attempts END,
        worker_id = NULL, mtime = now()
    FROM orphans WHERE q.message_id = orphans.message_id
    RETURNING q.message_id, q.queue_name, q."state"::text AS state, q.actor_name, q.tenant_id,
              q.attempts, orphans.worker_id AS lost_worker,
              extract(epoch FROM now() - q.started_at)::float8 AS running_seconds
), forgotten AS (
    DELETE FROM dramatiq.workers WHERE worker_id IN (SELECT worker_id FROM lost)
), woken AS (
    SELECT pg_notify('dramatiq.' || queue_name || '.enqueue', '') FROM rescued
    GROUP BY queue_name
), announced AS (
    {announce("CASE state WHEN 'rejected' THEN 'dead' ELSE 'rescued' END", "rescued")}
)
SELECT message_id, queue_name, state, actor_name, tenant_id, attempts, lost_worker,
       running_seconds
FROM rescued
WHERE (SELECT count(*) FROM woken) >= 0 AND (SELECT count(*) FROM announced) >= 0
"""


def register(conn: psycopg.Connection[Any], **fields: Any) -> None:
    """Insert or refresh this worker's row (``worker``, ``hostname``, ``pid``, ``queues``,
    ``host_key``, ``process_started``, ``lease`` in seconds)."""
    conn.execute(REGISTER, fields)


def heartbeat(conn: psycopg.Connection[Any], worker: uuid.UUID) -> bool:
    """Renew the lease; False when the row is gone (we were presumed dead: register again)."""
    return conn.execute(HEARTBEAT, {"worker": worker}).rowcount == 1


def set_metrics_port(conn: psycopg.Connection[Any], worker: uuid.UUID, port: int) -> None:
    conn.execute(METRICS_PORT, {"worker": worker, "port": port})


def neighbours(
    conn: psycopg.Connection[Any], worker: uuid.UUID, host_key: str
) -> list[Neighbour]:
    with conn.cursor(row_factory=class_row(Neighbour)) as cur:
        return cur.execute(NEIGHBOURS, {"worker": worker, "host_key": host_key}).fetchall()


def forget(conn: psycopg.Connection[Any], workers: Sequence[uuid.UUID]) -> None:
    conn.execute(FORGET, {"workers": list(workers)})


def rescue(conn: psycopg.Connection[Any]) -> list[Rescued]:
    """Take back the jobs of every worker whose own lease ran out."""
    with conn.cursor(row_factory=class_row(Rescued)) as cur:
        return cur.execute(RESCUE).fetchall()


def release(conn: psycopg.Connection[Any], worker: uuid.UUID) -> int:
    """Hand back what a stopping worker holds; the number of queues woken."""
    return conn.execute(RELEASE, {"worker": worker}).rowcount


def unregister(conn: psycopg.Connection[Any], worker: uuid.UUID) -> None:
    conn.execute(UNREGISTER, {"worker": worker})
