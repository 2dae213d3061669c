"""Queue control: pause, resume, clear waiting jobs, purge finished ones.

Pausing is a row in ``dramatiq.paused_queues``: every worker's claim skips a paused queue,
and idle consumers claim again at least every worker timeout (1 s with the ``dramatiq``
CLI), so a pause holds across all workers within a second. Jobs keep being accepted.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import psycopg

from app.ops.errors import BadArgument
from app.store import operator as queries

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[dict[str, Any]]

#: dramatiq's own rule for queue names.
QUEUE_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9._-]*")
BATCH = 5000


def check_queue_name(queue: str) -> str:
    """A queue an operator may name: dramatiq's syntax, and not a '.DQ' delay side-queue."""
    if not QUEUE_NAME.fullmatch(queue):
        raise BadArgument(f"not a queue name: {queue!r}")
    if queue.endswith(".DQ"):
        raise BadArgument(
            f"{queue!r} is the delayed side of {queue[:-3]!r}: name the queue itself"
        )
    return queue


def is_known(conn: Conn, queue: str) -> bool:
    """Whether any job, worker or pause mentions ``queue`` (an unknown one is likely a typo)."""
    row = conn.execute(queries.KNOWN_QUEUE, {"queue": queue}).fetchone()
    return bool(row and next(iter(row.values())))


def pause(conn: Conn, queue: str) -> bool:
    """Stop every worker claiming from ``queue``; False if it was already paused."""
    check_queue_name(queue)
    paused = conn.execute(queries.PAUSE, {"queue": queue}).rowcount == 1
    logger.info("event=paused queue=%s changed=%s", queue, paused)
    return paused


def resume(conn: Conn, queue: str) -> bool:
    """Let workers claim from ``queue`` again and wake the idle ones at once."""
    check_queue_name(queue)
    row = conn.execute(queries.RESUME, {"queue": queue}).fetchone()
    resumed = bool(row and row["resumed"])
    logger.info("event=resumed queue=%s changed=%s", queue, resumed)
    return resumed


def clear(
    conn: Conn, queue: str, *, tenant: uuid.UUID | None = None, dry_run: bool = False
) -> int:
    """Delete the waiting and delayed jobs of ``queue`` (running ones finish); the count."""
    check_queue_name(queue)
    params: dict[str, Any] = {"queue": queue, "tenant": tenant, "batch": BATCH}
    if dry_run:
        return _count(conn, queries.CLEAR_COUNT, params)
    deleted = _in_batches(conn, queries.CLEAR_BATCH, params)
    logger.info("event=cleared queue=%s tenant=%s deleted=%d", queue, tenant, deleted)
    return deleted


def purge(
    conn: Conn, *, older_than: float, queue: str | None = None, dry_run: bool = False
) -> int:
    """Delete finished jobs (completed, dead, cancelled) older than ``older_than`` seconds."""
    if queue is not None:
        check_queue_name(queue)
    params: dict[str, Any] = {"age": older_than, "queue": queue, "batch": BATCH}
    if dry_run:
        return _count(conn, queries.PURGE_COUNT, params)
    deleted = _in_batches(conn, queries.PURGE_BATCH, params)
    logger.info("event=purged queue=%s older_than=%s deleted=%d", queue, older_than, deleted)
    return deleted


def _count(conn: Conn, query: str, params: dict[str, Any]) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row["n"]) if row else 0


def _in_batches(conn: Conn, query: str, params: dict[str, Any]) -> int:
    """Repeat a batched DELETE, each batch its own short transaction, until none is left."""
    total = 0
    while True:
        deleted = conn.execute(query, params).rowcount
        total += deleted
        if deleted < params["batch"]:
            return total
