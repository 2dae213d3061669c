"""Cancel, reschedule and retry jobs from application code, in the caller's transaction.

``cancel(session, job_id)`` and ``reschedule(session, job_id, eta=...)`` act on waiting or
delayed jobs of the session's tenant only (RLS and the store's functions decide, not a
filter here) and join the caller's transaction: cancelling a reminder and deleting its row
commit together. A worker claiming the job at that instant is never raced: either it got
the job first (``JobRunning``) or the change wins and it never runs at the old time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from app.db.engine import Target, raw_connection
from app.store import control


class JobRunning(RuntimeError):
    """The job already started: it can no longer be cancelled or moved."""


class JobFinished(RuntimeError):
    """The job already ended (completed, dead or cancelled)."""


def _ids(job_ids: Iterable[str | uuid.UUID]) -> list[uuid.UUID]:
    try:
        return [i if isinstance(i, uuid.UUID) else uuid.UUID(str(i)) for i in job_ids]
    except ValueError as exc:
        raise ValueError(f"job ids must be UUIDs: {exc}") from None


def cancel_many(
    target: Target, job_ids: Iterable[str | uuid.UUID], *, reason: str = "cancelled"
) -> dict[str, str]:
    """Cancel waiting or delayed jobs; outcome per id: cancelled, running, finished, missing."""
    ids = _ids(job_ids)
    outcomes = control.cancel(raw_connection(target), ids, reason)
    return {str(i): outcomes.get(i, "missing") for i in ids}


def cancel(target: Target, job_id: str | uuid.UUID, *, reason: str = "cancelled") -> bool:
    """Cancel one waiting or delayed job: True if cancelled, False if it has already finished.

    Raises ``JobRunning`` when it has started, ``LookupError`` when the tenant has no such job.
    """
    outcome = cancel_many(target, [job_id], reason=reason)[str(job_id)]
    if outcome == "missing":
        raise LookupError(f"no job {job_id} for this tenant")
    if outcome == "running":
        raise JobRunning(f"job {job_id} is running: too late to cancel it")
    return outcome == "cancelled"


def reschedule(
    target: Target, job_id: str | uuid.UUID, *, eta: datetime | None = None,
    delay: float | None = None,
) -> None:
    """Run a waiting or delayed job at ``eta`` (aware datetime) or ``delay`` seconds from now.

    Raises ``JobRunning`` / ``JobFinished`` when it is too late, ``LookupError`` when the
    tenant has no such job.
    """
    if (eta is None) == (delay is None):
        raise ValueError("reschedule needs exactly one of eta= or delay=")
    if eta is not None and eta.tzinfo is None:
        raise ValueError(f"eta must be timezone-aware, got {eta!r}")
    when = eta if eta is not None else datetime.now(UTC) + timedelta(seconds=float(delay or 0))
    (job,) = _ids([job_id])
    outcome = control.reschedule(raw_connection(target), job, when)
    if outcome is None:
        raise LookupError(f"no job {job_id} for this tenant")
    if outcome == "running":
        raise JobRunning(f"job {job_id} is running: too late to reschedule it")
    if outcome == "finished":
        raise JobFinished(f"job {job_id} has finished: nothing to reschedule")


def retry_dead(target: Target, job_ids: Iterable[str | uuid.UUID]) -> dict[str, str]:
    """Run dead letters of the session's tenant again, attempts reset, in the caller's
    transaction. Outcome per id: ``rerun``, ``key_held`` (a newer live job holds its unique
    key), the status that rules it out (``waiting``, ``running``, ``done``, ``cancelled``),
    or ``missing``."""
    ids = _ids(job_ids)
    outcomes = control.retry(raw_connection(target), ids)
    return {str(i): outcomes.get(i, "missing") for i in ids}
