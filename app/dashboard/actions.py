"""Actions on jobs and queues, each recorded in ``dashboard.audit`` (who, when, what, outcome).

Operators act through the operation functions (``app.ops.control``, ``app.ops.queues``) on
the owner's connection, as the CLI does. A tenant admin never names a job the database has
not shown them: cancel goes through ``app.jobs.cancel_many`` in their tenant's session, and
retry/requeue first read the ids under that session (RLS decides which exist for the
tenant) and then act on exactly those ids. Ids the tenant cannot see are "not found", the
same answer as for ids that do not exist.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session

from app.dashboard.db import Database, fetch_one
from app.dashboard.viewer import Viewer
from app.db.tenant import tenant_session
from app.jobs import JobFinished, JobRunning, cancel_many, reschedule, retry_dead
from app.ops import control
from app.ops import queues as queue_ops
from app.ops.errors import OpsError
from app.store import dashboard as queries

logger = logging.getLogger("pgjobs.dashboard")

#: Actions on named jobs, and on a queue; bulk actions walk a filter (app/dashboard/bulk.py).
JOB_ACTIONS = ("retry", "cancel", "requeue")
QUEUE_ACTIONS = ("pause", "resume", "clear")


class ActionRefused(Exception):
    """The action did not run (or changed nothing); the message says why, for the user."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Outcome:
    summary: str
    changed: list[uuid.UUID] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def audit(db: Database, viewer: Viewer, action: str, target: str, outcome: str,
          detail: dict[str, Any] | None = None) -> None:
    """Record an action (never a payload value): one row and one log line."""
    with db.owner() as conn:
        conn.execute(queries.AUDIT, {
            "kind": viewer.kind, "name": viewer.name, "tenant": viewer.tenant_id,
            "action": action, "target": target, "outcome": outcome,
            "detail": Jsonb(detail or {}),
        })
    logger.info("event=dashboard_action action=%s target=%s outcome=%s viewer=%s kind=%s "
                "tenant=%s", action, target, outcome, viewer.name, viewer.kind,
                viewer.tenant_id)


def _reason(viewer: Viewer) -> str:
    return f"cancelled by {viewer.name} (dashboard)"


def run_job_action(db: Database, viewer: Viewer, action: str, ids: list[uuid.UUID]
                   ) -> Outcome:
    """Retry, cancel or requeue named jobs; audited whatever happens."""
    target = ",".join(str(i) for i in ids[:20]) + ("..." if len(ids) > 20 else "")
    try:
        outcome = _job_action(db, viewer, action, ids)
    except ActionRefused as exc:
        audit(db, viewer, action, target, "refused", {"jobs": len(ids), "reason": str(exc)})
        raise
    audit(db, viewer, action, target, "done",
          {"jobs": len(ids), "changed": len(outcome.changed), "skipped": len(outcome.skipped)})
    return outcome


def _job_action(db: Database, viewer: Viewer, action: str, ids: list[uuid.UUID]) -> Outcome:
    if action not in JOB_ACTIONS:
        raise ActionRefused(f"unknown action {action!r}", 400)
    if not viewer.operator:
        return _tenant_job_action(db, viewer, action, ids)
    with db.owner() as conn:
        try:
            if action == "cancel":
                result = control.cancel(conn, ids, reason=_reason(viewer))
            elif action == "retry":
                result = control.retry(conn, ids)
            else:
                result = control.requeue(conn, ids)
        except OpsError as exc:
            raise ActionRefused(str(exc), 404 if "no job" in str(exc) else 409) from None
    return _outcome(action, result)


def _outcome(action: str, result: control.Outcome) -> Outcome:
    verb = {"retry": "retried", "cancel": "cancelled", "requeue": "requeued"}[action]
    return Outcome(
        summary=f"{verb} {len(result.changed)} job(s)",
        changed=[r["message_id"] for r in result.changed],
        skipped=[f"{r['message_id']}: {r['reason']}" for r in result.skipped],
    )


def _tenant_job_action(db: Database, viewer: Viewer, action: str, ids: list[uuid.UUID]
                       ) -> Outcome:
    assert viewer.tenant_id is not None
    if action == "cancel":
        with tenant_session(viewer.tenant_id) as session:
            outcomes = cancel_many(session, ids, reason=_reason(viewer))
        missing = [i for i, o in outcomes.items() if o == "missing"]
        if len(missing) == len(ids):
            raise ActionRefused("no such job", 404)
        changed = [uuid.UUID(i) for i, o in outcomes.items() if o == "cancelled"]
        skipped = [f"{i}: {'not found' if o == 'missing' else o}"
                   for i, o in outcomes.items() if o != "cancelled"]
        if not changed:
            raise ActionRefused("; ".join(skipped))
        return Outcome(f"cancelled {len(changed)} job(s)", changed, skipped)
    # Retry and requeue through the tenant's own session: the database acts on the
    # tenant's jobs only, whatever ids the request names.
    with tenant_session(viewer.tenant_id) as session:
        if action == "retry":
            outcomes = retry_dead(session, ids)
            done = {i for i, o in outcomes.items() if o == "rerun"}
        else:
            outcomes = _tenant_requeue(session, ids)
            done = {i for i, o in outcomes.items() if o in ("rerun", "rescheduled")}
    if all(o == "missing" for o in outcomes.values()):
        raise ActionRefused("no such job", 404)
    changed = [uuid.UUID(i) for i in done]
    skipped = [f"{i}: {'not found' if o == 'missing' else o}"
               for i, o in outcomes.items() if i not in done]
    if not changed:
        raise ActionRefused("; ".join(skipped), 409)
    verb = "retried" if action == "retry" else "requeued"
    return Outcome(f"{verb} {len(changed)} job(s)", changed, skipped)


def _tenant_requeue(session: Session, ids: list[uuid.UUID]) -> dict[str, str]:
    """Delayed jobs run now; dead letters run again; others are left as they are."""
    outcomes = retry_dead(session, ids)
    for job_id, outcome in list(outcomes.items()):
        if outcome == "waiting":
            try:
                reschedule(session, job_id, delay=0)
                outcomes[job_id] = "rescheduled"
            except (LookupError, JobRunning, JobFinished) as exc:
                outcomes[job_id] = type(exc).__name__
    return outcomes


def run_queue_action(db: Database, viewer: Viewer, action: str, queue: str) -> Outcome:
    """Pause or resume a queue (clear runs as a bulk action); operators only."""
    if not viewer.operator:
        audit(db, viewer, action, queue, "refused", {"reason": "operators only"})
        raise ActionRefused("only operators can pause, resume or clear queues", 403)
    try:
        queue_ops.check_queue_name(queue)
        with db.owner() as conn:
            if action == "pause":
                changed = queue_ops.pause(conn, queue)
                summary = f"paused {queue}" if changed else f"{queue} was already paused"
            elif action == "resume":
                changed = queue_ops.resume(conn, queue)
                summary = f"resumed {queue}" if changed else f"{queue} was not paused"
            else:
                raise ActionRefused(f"unknown queue action {action!r}", 400)
    except OpsError as exc:
        audit(db, viewer, action, queue, "refused", {"reason": str(exc)})
        raise ActionRefused(str(exc), 400) from None
    audit(db, viewer, action, queue, "done", {"changed": changed})
    return Outcome(summary)


def bulk(db: Database, bulk_id: uuid.UUID) -> dict[str, Any] | None:
    with db.owner() as conn:
        return fetch_one(conn, queries.BULK, {"id": bulk_id})


def recent_audit(db: Database, viewer: Viewer, limit: int = 50) -> list[dict[str, Any]]:
    from app.dashboard.db import fetch

    with db.owner() as conn:
        return fetch(conn, queries.RECENT_AUDIT, {"tenant": viewer.tenant_id, "limit": limit})
