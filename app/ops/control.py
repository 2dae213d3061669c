"""Job control for operators: cancel, retry dead letters, requeue. Each call one transaction.

Named jobs are all-or-nothing: an unknown id (``UnknownJob``) or a job whose state rules
the operation out (``NotApplicable``) changes nothing. ``retry_all`` takes every dead letter
it can and reports the ones it skipped. The transitions themselves are the job store's
(``app.store.control``): the same ones tenant code gets for its own jobs.

Unique keys: a job run again holds its unique key again while it is live. If a newer job
took the key meanwhile and still holds it, running the old one would duplicate its work,
so it is refused (``key_held``); a holder past its window gives the key up, as on enqueue.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from app.ops.errors import NotApplicable, UnknownJob
from app.store import control
from app.store import operator as queries

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[dict[str, Any]]
Row = dict[str, Any]

CANCEL_REASON = "cancelled by operator"
CANCELLABLE = ("waiting", "delayed", "retrying")
#: Statuses of finished jobs as the store's rerun names them.
FINISHED = {"completed": "done", "dead": "dead", "cancelled": "cancelled"}


@dataclass
class Outcome:
    #: Jobs changed: message_id, actor_name, queue, tenant_id, status (before the change).
    changed: list[Row] = field(default_factory=list)
    #: Jobs left alone: message_id, status, reason.
    skipped: list[Row] = field(default_factory=list)


def cancel(conn: Conn, ids: Sequence[uuid.UUID], *, reason: str = CANCEL_REASON) -> Outcome:
    """Cancel waiting or delayed jobs: they never run and stay visible as 'cancelled'."""
    with conn.transaction():
        rows = _lock(conn, ids)
        _refuse(rows, lambda r: None if r["status"] in CANCELLABLE else
                f"{r['status']}: only waiting, delayed or retrying jobs can be cancelled")
        control.operator_cancel(conn, [r["message_id"] for r in rows], reason)
    _log("cancelled", rows)
    return Outcome(changed=rows)


def retry(conn: Conn, ids: Sequence[uuid.UUID]) -> Outcome:
    """Send the named dead letters back to their queue with their attempts reset."""
    with conn.transaction():
        rows = _lock(conn, ids)
        _refuse(rows, lambda r: None if r["status"] == "dead" else
                f"{r['status']}: only dead letters are retried (see requeue)")
        held = _rerun(conn, rows)
        _refuse(held, lambda r: r["reason"])
    _log("retried", rows)
    return Outcome(changed=rows)


def retry_all(conn: Conn, *, queue: str | None = None) -> Outcome:
    """Send every dead letter (of ``queue``) back; skip those whose unique key is taken."""
    with conn.transaction():
        rows = conn.execute(queries.LOCK_DEAD, {"queue": queue}).fetchall()
        skipped = _rerun(conn, rows)
        held = {r["message_id"] for r in skipped}
        rows = [r for r in rows if r["message_id"] not in held]
    _log("retried", rows)
    return Outcome(changed=rows, skipped=skipped)


def requeue(conn: Conn, ids: Sequence[uuid.UUID]) -> Outcome:
    """Run jobs as soon as possible: delayed ones now (attempts kept), finished ones again.

    Waiting jobs are already as soon as possible and are reported as skipped; running
    jobs cannot be requeued (their worker holds them) and refuse the whole call.
    """
    with conn.transaction():
        rows = _lock(conn, ids)
        _refuse(rows, lambda r: "active: the job is running" if r["status"] == "active"
                else None)
        waiting = [{"message_id": r["message_id"], "status": r["status"],
                    "reason": "already waiting"} for r in rows if r["status"] == "waiting"]
        due = [r for r in rows if r["status"] in ("delayed", "retrying")]
        finished = [r for r in rows if r["status"] in FINISHED]
        if due:
            control.operator_reschedule(conn, [r["message_id"] for r in due], datetime.now(UTC))
        held = _rerun(conn, finished)
        _refuse(held, lambda r: r["reason"])
    _log("requeued", due + finished)
    return Outcome(changed=due + finished, skipped=waiting)


# -- helpers ----------------------------------------------------------------------------


def _lock(conn: Conn, ids: Sequence[uuid.UUID]) -> list[Row]:
    unique = list(dict.fromkeys(ids))
    rows = conn.execute(queries.LOCK_JOBS, {"ids": unique}).fetchall()
    missing = set(unique) - {r["message_id"] for r in rows}
    if missing:
        raise UnknownJob("no job with id " + ", ".join(sorted(str(m) for m in missing)))
    return rows


def _refuse(rows: list[Row], reason_for: Callable[[Row], str | None]) -> None:
    """Raise ``NotApplicable`` naming every row ``reason_for`` objects to."""
    problems = [f"{r['message_id']}: {reason}" for r in rows if (reason := reason_for(r))]
    if problems:
        raise NotApplicable("; ".join(problems))


def _rerun(conn: Conn, rows: list[Row]) -> list[Row]:
    """Run finished ``rows`` again; the ones whose unique key another live job holds."""
    if not rows:
        return []
    status = {r["message_id"]: r["status"] for r in rows}
    states = sorted({FINISHED[s] for s in status.values()})
    held = []
    for change in control.operator_rerun(conn, list(status), states):
        if change.outcome == "key_held":
            row = next(r for r in rows if r["message_id"] == change.message_id)
            key = row["unique_key"] or row["wanted_key"]
            holder = conn.execute(queries.KEY_HOLDER, {"tenant": row["tenant_id"], "key": key,
                                                       "id": row["message_id"]}).fetchone()
            by = f"job {holder['message_id']}" if holder else "another live job"
            held.append({"message_id": change.message_id, "status": status[change.message_id],
                         "reason": f"unique key {key!r} is held by {by}"})
    return held


def _log(event: str, rows: list[Row]) -> None:
    for r in rows:
        logger.info("event=%s message_id=%s actor=%s queue=%s tenant=%s source=operator",
                    event, r["message_id"], r["actor_name"], r["queue"], r["tenant_id"])
