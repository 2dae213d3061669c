"""Retention and queue gauges: the maintenance leader's statements on the job table.

Each prune batch is one short autocommit statement that skips rows someone else holds, so
pruning never blocks workers or operators; batches repeat until a queue is within its
limits. A finished job still inside its unique window is kept (deleting it would let a
duplicate in).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import class_row

from app.store.rows import QueueGauge

# Queues some live worker serves (retention also covers the queues with a policy).
SERVED_QUEUES = "SELECT DISTINCT unnest(queues) FROM dramatiq.workers"

# One small batch of finished rows past their queue's age or count limit, oldest first.
# The count limit keeps exactly the newest ``keep`` rows: group-committed completions share
# one mtime, so ties are broken by id.
PRUNE_BATCH = """
WITH newest_dropped AS (
    SELECT mtime, message_id FROM dramatiq.queue
    WHERE %(keep)s::integer IS NOT NULL
      AND queue_name = %(queue)s AND "state" = %(state)s::dramatiq.state
    ORDER BY mtime DESC, message_id DESC OFFSET %(keep)s::integer LIMIT 1
), doomed AS (
    SELECT q.message_id FROM dramatiq.queue q
    WHERE q.queue_name = %(queue)s AND q."state" = %(state)s::dramatiq.state
      AND (q.mtime < now() - make_interval(secs => %(max_age)s::float8)
           OR (q.mtime, q.message_id) <= (SELECT mtime, message_id FROM newest_dropped))
      AND (q.unique_until IS NULL OR q.unique_until <= now())
    ORDER BY q.mtime
    LIMIT %(batch)s
    FOR UPDATE OF q SKIP LOCKED
)
DELETE FROM dramatiq.queue q USING doomed WHERE q.message_id = doomed.message_id
"""

# Per queue: waiting, delayed (incl. retry backoff), active, and the oldest due job's wait.
QUEUE_GAUGES = """
SELECT regexp_replace(queue_name, '\\.DQ$', '') AS queue,
       count(*) FILTER (WHERE "state" = 'queued' AND queue_name NOT LIKE '%%.DQ') AS waiting,
       count(*) FILTER (WHERE "state" = 'queued' AND queue_name LIKE '%%.DQ') AS delayed,
       count(*) FILTER (WHERE "state" = 'consumed') AS active,
       coalesce(max(extract(epoch FROM now() - eta)::float8) FILTER (
           WHERE "state" = 'queued' AND queue_name NOT LIKE '%%.DQ' AND eta <= now()), 0)
           AS oldest_waiting_seconds
FROM dramatiq.queue
WHERE "state" IN ('queued', 'consumed')
GROUP BY 1
"""


def served_queues(conn: psycopg.Connection[Any]) -> set[str]:
    return {q for (q,) in conn.execute(SERVED_QUEUES)}


def prune_batch(
    conn: psycopg.Connection[Any], queue: str, state: str, max_age: float | None,
    keep: int | None, batch: int,
) -> int:
    """Delete one batch of ``queue``'s finished rows in ``state`` past the limits."""
    return conn.execute(PRUNE_BATCH, {"queue": queue, "state": state, "max_age": max_age,
                                      "keep": keep, "batch": batch}).rowcount


def queue_gauges(conn: psycopg.Connection[Any]) -> list[QueueGauge]:
    with conn.cursor(row_factory=class_row(QueueGauge)) as cur:
        return cur.execute(QUEUE_GAUGES).fetchall()
