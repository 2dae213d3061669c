"""Retention: delete finished jobs past their queue's age or count limit, in small batches.

Limits come from ``app.jobs.policies`` (completed = state ``done``; failed = ``rejected``,
dead letters and cancelled jobs alike). Each batch is one short autocommit statement that
skips rows someone else holds, so pruning never blocks workers or operators and never
holds a lock for long; batches repeat until a queue is within its limits, so the table
stays bounded under steady load. A finished job still inside its unique window is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import psycopg
from dramatiq.common import dq_name

from app.jobs import metrics
from app.jobs.policies import QueuePolicy, policy_for
from app.store import retention

logger = logging.getLogger(__name__)

#: At most this many batches per queue and state in one pass (the next pass goes on).
MAX_BATCHES = 200


def limits(policy: QueuePolicy) -> list[tuple[str, float | None, int | None]]:
    """(state, max age in seconds, max count) for each kind of finished job."""
    return [
        ("done", policy.completed_max_age, policy.completed_max_count),
        ("rejected", policy.failed_max_age, policy.failed_max_count),
    ]


def prune(
    conn: psycopg.Connection,
    queues: Iterable[str],
    *,
    batch: int = 500,
    policy: Callable[[str], QueuePolicy] = policy_for,
) -> dict[tuple[str, str], int]:
    """One pass over ``queues`` (base names); rows deleted per (queue, state).

    ``conn`` must be in autocommit mode: each batch commits on its own.
    """
    deleted: dict[tuple[str, str], int] = {}
    for queue in sorted(set(queues)):
        for state, max_age, keep in limits(policy(queue)):
            if max_age is None and keep is None:
                continue
            total = 0
            for physical in (queue, dq_name(queue)):
                total += _prune_one(conn, physical, state, max_age, keep, batch)
            if total:
                deleted[(queue, state)] = total
                metrics.PRUNED.labels(queue, state).inc(total)
                logger.info("event=pruned queue=%s state=%s deleted=%s", queue, state, total)
    return deleted


def _prune_one(
    conn: psycopg.Connection, queue: str, state: str, max_age: float | None, keep: int | None,
    batch: int,
) -> int:
    """Age limit first, then count: the count's cutoff is read once for the pass (deleting
    older rows does not move it; rows finished since wait for the next pass)."""
    budget = MAX_BATCHES
    total = 0

    def batches(delete: Callable[[], int]) -> None:
        nonlocal budget, total
        while budget > 0:
            budget -= 1
            n = delete()
            total += n
            if n < batch:
                return

    if max_age is not None:
        age = max_age
        batches(lambda: retention.prune_aged(conn, queue, state, age, batch))
    if keep is not None and budget > 0:
        cutoff = retention.count_cutoff(conn, queue, state, keep)
        if cutoff is not None:
            batches(lambda: retention.prune_through(conn, queue, state, cutoff, batch))
    return total
