"""Claiming jobs: due rows of one queue, highest priority first, then oldest; batched.

``FOR UPDATE SKIP LOCKED`` lets every consumer of every worker claim at once without
waiting on each other. Each claimed row comes back with its lease (only this role can
compute it: it opens the job's tenant context and completes the job) and whether its
tenant may run jobs. One ``active`` event per claim, not per job. Delayed rows wait in
``<queue>.DQ`` and are moved into their queue when due by one indexed statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from app.store.channels import announce
from app.store.rows import Claimed

_RESULT = """
SELECT c.message_id, c.message, c.tenant_id, c.attempts, c.max_attempts, c.priority, c.eta,
       pgjobs.lease_token(c.message_id, c.attempts, %(worker)s) AS lease,
       CASE WHEN c.tenant_id IS NULL THEN 'ok' WHEN t.id IS NULL THEN 'unknown'
            WHEN t.active THEN 'ok' ELSE 'inactive' END AS tenant_status, now() AS claimed
FROM claimed c
LEFT JOIN public.tenants t ON t.id = c.tenant_id
"""

_CLAIMED = f"""
claimed AS (
    UPDATE dramatiq.queue q
    SET "state" = 'consumed', worker_id = %(worker)s, started_at = now(), mtime = now(),
        attempts = q.attempts + 1
    FROM next
    WHERE q.message_id = next.message_id
    RETURNING q.message_id, q.message, q.tenant_id, q.attempts, q.max_attempts, q.priority,
              q.eta
), announced AS (
    {announce("'active'", "claimed", queue="%(queue)s::text")}
)
{_RESULT}
WHERE (SELECT count(*) FROM announced) >= 0
"""

_NOT_PAUSED = ("NOT EXISTS (SELECT 1 FROM dramatiq.paused_queues p "
               "WHERE p.queue_name = %(queue)s)")

#: The whole queue, from its oldest ready row (what a claim without floors reads).
CLAIM = f"""
WITH next AS (
    SELECT message_id FROM dramatiq.queue
    WHERE queue_name = %(queue)s AND "state" = 'queued' AND {_NOT_PAUSED}
    ORDER BY priority DESC, eta
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), {_CLAIMED}"""

#: From floors: each known priority band is read from its floor (the eta of the last row
#: claimed there), the priorities between and around them in full. Rows claimed leave dead
#: entries at the start of the claim index that nothing can prune while any transaction
#: holds an old snapshot; a claim from the oldest row walks all of them, one from the floor
#: walks only what is newer. Rows that become ready behind a floor announce their eta in
#: the queue's NOTIFY (the consumer lowers its floors) or are found by the periodic CLAIM.
CLAIM_FROM = f"""
WITH candidates AS (
    SELECT c.* FROM unnest(%(priorities)s::int[], %(floors)s::timestamptz[]) AS b(p, floor)
    CROSS JOIN LATERAL (
        SELECT message_id, priority, eta FROM dramatiq.queue
        WHERE queue_name = %(queue)s AND "state" = 'queued' AND {_NOT_PAUSED}
          AND priority = b.p AND eta >= b.floor
        ORDER BY eta LIMIT %(limit)s FOR UPDATE SKIP LOCKED) c
    UNION ALL
    SELECT c.* FROM unnest(%(gap_lo)s::int[], %(gap_hi)s::int[]) AS g(lo, hi)
    CROSS JOIN LATERAL (
        SELECT message_id, priority, eta FROM dramatiq.queue
        WHERE queue_name = %(queue)s AND "state" = 'queued' AND {_NOT_PAUSED}
          AND priority BETWEEN g.lo AND g.hi
        ORDER BY priority DESC, eta LIMIT %(limit)s FOR UPDATE SKIP LOCKED) c
), next AS (
    SELECT message_id FROM candidates ORDER BY priority DESC, eta LIMIT %(limit)s
), {_CLAIMED}"""

#: Settings of the claim connection's session (``configure_session``).
#:
#: * ``synchronous_commit = off``: a claim's commit does not wait for its WAL flush (a third
#:   of a claim's time). A claim is recoverable state: WAL is flushed in order, so the
#:   commit of anything that follows from a claim (the job's transaction with its
#:   completion, a completion batch) makes the claim durable first; a crash can only lose
#:   claims whose jobs had not committed anything, and those rows are simply ready again.
#:   The same holds for a promotion of delayed rows.
#:
#: Not ``plan_cache_mode = force_generic_plan``: it saved ~0.6 ms of planning a floor claim on
#: a small table, but with 1,000,000 finished and 100,000 delayed rows the drain fell to 0.08x
#: of its empty-table rate (0.77x with custom plans).
SESSION_SETTINGS = "SET synchronous_commit = off"


def configure_session(conn: psycopg.Connection[Any]) -> None:
    """Prepare a new claim connection's session (``SESSION_SETTINGS``)."""
    conn.execute(SESSION_SETTINGS)


#: Priorities are smallints.
_LOWEST, _HIGHEST = -32768, 32767


def gaps(priorities: list[int]) -> tuple[list[int], list[int]]:
    """The priority ranges around and between ``priorities`` (sorted, descending), as
    (lows, highs) of inclusive bounds: every priority not in a known band."""
    lows, highs = [], []
    upper = _HIGHEST
    for p in [*priorities, _LOWEST - 1]:
        if p + 1 <= upper:
            lows.append(p + 1)
            highs.append(upper)
        upper = p - 1
    return lows, highs


#: One claim on a limited queue (``dramatiq.claim_limited``, migration 0005). A row with a
#: NULL message_id carries only ``wait_seconds``: when the next rate slot opens.
CLAIM_LIMITED = f"""
WITH result AS (
    SELECT * FROM dramatiq.claim_limited(
        %(queue)s, %(limit)s, %(worker)s,
        %(key_rate)s, %(key_rate_seconds)s, %(key_concurrency)s,
        %(queue_rate)s, %(queue_rate_seconds)s, %(queue_concurrency)s, %(fair)s)
), claimed AS (
    SELECT message_id FROM result WHERE message_id IS NOT NULL
), announced AS (
    {announce("'active'", "claimed", queue="%(queue)s::text")}
)
SELECT r.message_id, r.message, r.tenant_id, r.attempts, r.max_attempts, r.priority, r.eta,
       CASE WHEN r.message_id IS NOT NULL
            THEN pgjobs.lease_token(r.message_id, r.attempts, %(worker)s) END AS lease,
       CASE WHEN r.tenant_id IS NULL THEN 'ok' WHEN t.id IS NULL THEN 'unknown'
            WHEN t.active THEN 'ok' ELSE 'inactive' END AS tenant_status, now() AS claimed,
       r.wait_seconds
FROM result r
LEFT JOIN public.tenants t ON t.id = r.tenant_id
WHERE (SELECT count(*) FROM announced) >= 0
"""

# Move due delayed rows ('<queue>.DQ') into their queue; report when the next one is due.
# ``queue_name LIKE '%.DQ'`` repeats queue_delayed_idx's predicate: PostgreSQL cannot prove it
# from ``queue_name = 'x.DQ'``, and without it both reads walked every delayed row of the
# queue in the claim index (51 ms with 100,000 reminders pending; 0.3 ms on the (name, eta)
# index). The move looks its rows up by id, whatever a generic plan guesses for ``LIMIT $n``.
PROMOTE = """
WITH due AS (
    SELECT message_id FROM dramatiq.queue
    WHERE queue_name = %(delayed)s AND queue_name LIKE '%%.DQ' AND "state" = 'queued'
      AND eta <= now()
    ORDER BY eta
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE dramatiq.queue q SET queue_name = %(queue)s, mtime = now()
    WHERE q.message_id = ANY (ARRAY(SELECT message_id FROM due))
    RETURNING q.eta
)
SELECT (SELECT count(*) FROM moved), (SELECT min(eta) FROM moved),
       (SELECT min(eta) FROM dramatiq.queue
        WHERE queue_name = %(delayed)s AND queue_name LIKE '%%.DQ' AND "state" = 'queued'
          AND eta > now())
"""

# Jobs enqueued before their queue had limits get their scoped default key (their tenant).
BACKFILL_KEYS = """
UPDATE dramatiq.queue SET limit_key = coalesce(tenant_id::text, 'system') || '/'
WHERE queue_name = ANY(%(queues)s::text[]) AND "state" = 'queued' AND limit_key IS NULL
"""


def claim(
    conn: psycopg.Connection[Any], queue: str, limit: int, worker: uuid.UUID,
    floors: Mapping[int, datetime] | None = None,
) -> list[Claimed]:
    """Claim up to ``limit`` due jobs of ``queue`` (none while it is paused), from the
    oldest ready row or, given ``floors`` (priority -> eta), from there in those bands."""
    params: dict[str, Any] = {"queue": queue, "limit": limit, "worker": worker}
    sql = CLAIM
    if floors:
        priorities = sorted(floors, reverse=True)
        lows, highs = gaps(priorities)
        params.update(priorities=priorities, floors=[floors[p] for p in priorities],
                      gap_lo=lows, gap_hi=highs)
        sql = CLAIM_FROM
    with conn.cursor(row_factory=class_row(Claimed)) as cur:
        return cur.execute(sql, params).fetchall()


def claim_limited(
    conn: psycopg.Connection[Any], queue: str, limit: int, worker: uuid.UUID,
    limits: dict[str, Any],
) -> tuple[list[Claimed], float | None]:
    """Claim within the queue's limits; also the seconds until a rate slot opens, if known."""
    rows = conn.execute(CLAIM_LIMITED, {"queue": queue, "limit": limit, "worker": worker,
                                        **limits}).fetchall()
    claimed = [Claimed(*row[:10]) for row in rows if row[0] is not None]
    waits = [row[10] for row in rows if row[0] is None and row[10] is not None]
    return claimed, (min(waits) if waits else None)


def promote(
    conn: psycopg.Connection[Any], queue: str, delayed: str, limit: int
) -> tuple[int, datetime | None, datetime | None]:
    """Move up to ``limit`` due delayed jobs: (moved, the oldest eta moved, the eta of the
    next delayed job), etas None when there is none."""
    row = conn.execute(PROMOTE, {"queue": queue, "delayed": delayed, "limit": limit}).fetchone()
    return (row[0], row[1], row[2]) if row else (0, None, None)


def backfill_keys(conn: psycopg.Connection[Any], queues: list[str]) -> int:
    """Key waiting jobs of limited ``queues`` (and their delayed sides) by their tenant."""
    names = [q for queue in queues for q in (queue, f"{queue}.DQ")]
    return conn.execute(BACKFILL_KEYS, {"queues": names}).rowcount
