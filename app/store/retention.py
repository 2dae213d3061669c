"""Retention and queue gauges: the maintenance leader's statements on the job table.

Each prune batch is one short autocommit statement that skips rows someone else holds, so
pruning never blocks workers or operators; batches repeat until a queue is within its
limits, each a range of the finished-rows index whatever the table holds. A finished job
still inside its unique window is kept (deleting it would let a duplicate in).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from app.store.rows import QueueGauge

# Queues some live worker serves (retention also covers the queues with a policy).
SERVED_QUEUES = "SELECT DISTINCT unnest(queues) FROM dramatiq.workers"

# Retention's statements, one per finished state with the state written in: a generic plan
# (psycopg prepares a statement run five times, and PostgreSQL may then plan it once for any
# parameters) cannot use the partial ``queue_finished_idx`` for a ``state = $n`` it cannot
# prove is finished, and fell back to a sort of the whole queue for every batch. The two
# limits are two statements, each a range of that index (no ``OR`` for the planner to guess),
# and the delete looks its batch up by id: joined to a ``LIMIT $n`` the planner guesses at
# 10 % of the table, a generic plan hashed it against a scan of the whole table.
FINISHED_STATES = ("done", "rejected")

# One batch of finished rows older than the age limit, oldest first.
_AGED_BATCH = """
WITH doomed AS (
    SELECT q.message_id FROM dramatiq.queue q
    WHERE q.queue_name = %(queue)s AND q."state" = '{state}'
      AND q.mtime < now() - make_interval(secs => %(max_age)s::float8)
      AND (q.unique_until IS NULL OR q.unique_until <= now())
    ORDER BY q.mtime, q.message_id
    LIMIT %(batch)s
    FOR UPDATE OF q SKIP LOCKED
)
DELETE FROM dramatiq.queue WHERE message_id = ANY (ARRAY(SELECT message_id FROM doomed))
"""

# The newest row past the count limit: exactly ``keep`` rows are newer. Group-committed
# completions share one mtime, so ties are broken by id (a backward walk of keep entries).
_COUNT_CUTOFF = """
SELECT mtime, message_id FROM dramatiq.queue
WHERE queue_name = %(queue)s AND "state" = '{state}'
ORDER BY mtime DESC, message_id DESC OFFSET %(keep)s LIMIT 1
"""

# One batch of the rows at or before that cutoff: a row comparison is an index bound.
_THROUGH_BATCH = """
WITH doomed AS (
    SELECT q.message_id FROM dramatiq.queue q
    WHERE q.queue_name = %(queue)s AND q."state" = '{state}'
      AND (q.mtime, q.message_id) <= (%(mtime)s::timestamptz, %(message_id)s::uuid)
      AND (q.unique_until IS NULL OR q.unique_until <= now())
    ORDER BY q.mtime, q.message_id
    LIMIT %(batch)s
    FOR UPDATE OF q SKIP LOCKED
)
DELETE FROM dramatiq.queue WHERE message_id = ANY (ARRAY(SELECT message_id FROM doomed))
"""

AGED_BATCH = {s: _AGED_BATCH.format(state=s) for s in FINISHED_STATES}
COUNT_CUTOFF = {s: _COUNT_CUTOFF.format(state=s) for s in FINISHED_STATES}
THROUGH_BATCH = {s: _THROUGH_BATCH.format(state=s) for s in FINISHED_STATES}

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


def prune_aged(
    conn: psycopg.Connection[Any], queue: str, state: str, max_age: float, batch: int,
) -> int:
    """Delete one batch of ``queue``'s rows in ``state`` finished over ``max_age`` s ago."""
    return conn.execute(AGED_BATCH[state], {"queue": queue, "max_age": max_age,
                                            "batch": batch}).rowcount


def count_cutoff(
    conn: psycopg.Connection[Any], queue: str, state: str, keep: int,
) -> tuple[datetime, UUID] | None:
    """(mtime, id) of the newest row past the newest ``keep``; None when within the limit."""
    row = conn.execute(COUNT_CUTOFF[state], {"queue": queue, "keep": keep}).fetchone()
    return (row[0], row[1]) if row else None


def prune_through(
    conn: psycopg.Connection[Any], queue: str, state: str, cutoff: tuple[datetime, UUID],
    batch: int,
) -> int:
    """Delete one batch of ``queue``'s rows in ``state`` at or before ``cutoff``."""
    return conn.execute(THROUGH_BATCH[state], {"queue": queue, "mtime": cutoff[0],
                                               "message_id": cutoff[1],
                                               "batch": batch}).rowcount


def queue_gauges(conn: psycopg.Connection[Any]) -> list[QueueGauge]:
    with conn.cursor(row_factory=class_row(QueueGauge)) as cur:
        return cur.execute(QUEUE_GAUGES).fetchall()
