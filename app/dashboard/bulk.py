"""Bulk actions: retry or cancel every job matching a filter, or clear a queue, in batches.

Each batch is its own short transaction (``DASHBOARD_BATCH`` jobs, 500 by default), so a
bulk action over 100,000 jobs never holds 100,000 row locks, and workers keep claiming
meanwhile. Progress is a row of ``dashboard.bulk_actions`` updated after every batch, with a
NOTIFY carrying its id, so every open page of it (in any dashboard process) updates live.
A process that dies mid-way leaves the row 'running' with an old ``updated_at``: the page
shows it as stalled, with how far it got.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass

from psycopg.types.json import Jsonb

from app.dashboard.actions import ActionRefused, audit
from app.dashboard.db import Database, fetch_one
from app.dashboard.filters import Cursor, JobFilter
from app.dashboard.reads import matching_ids
from app.dashboard.viewer import Viewer
from app.db.tenant import tenant_session
from app.jobs import cancel_many
from app.ops import control
from app.ops import queues as queue_ops
from app.ops.control import CANCELLABLE
from app.ops.errors import OpsError
from app.store import dashboard as queries

logger = logging.getLogger("pgjobs.dashboard")

BULK_ACTIONS = ("retry", "cancel", "clear")


@dataclass
class Batch:
    changed: int = 0
    skipped: int = 0


class BulkRunner:
    """Starts bulk actions in background threads of this process."""

    def __init__(self, db: Database, batch_size: int) -> None:
        self.db, self.batch_size = db, batch_size
        self.threads: list[threading.Thread] = []

    def start(self, viewer: Viewer, action: str, f: JobFilter | None = None,
              queue: str | None = None) -> uuid.UUID:
        """Record the action, start it, and return its id (for its progress page)."""
        if action not in BULK_ACTIONS:
            raise ActionRefused(f"unknown bulk action {action!r}", 400)
        if action == "clear":
            if not viewer.operator:
                raise ActionRefused("only operators can clear a queue", 403)
            try:
                queue_ops.check_queue_name(queue or "")
            except OpsError as exc:
                raise ActionRefused(str(exc), 400) from None
            target, detail = str(queue), {"queue": str(queue)}
        else:
            assert f is not None
            if action == "retry" and f.status != "dead":
                raise ActionRefused("retry all applies to dead letters (status dead)", 400)
            if action == "cancel" and f.status not in CANCELLABLE:
                raise ActionRefused("cancel all applies to waiting, delayed or retrying jobs",
                                    400)
            detail = f.as_dict()
            target = f.query()
        with self.db.owner() as conn:
            row = fetch_one(conn, queries.START_BULK, {
                "action": action, "filter": Jsonb(detail), "kind": viewer.kind,
                "name": viewer.name, "tenant": viewer.tenant_id, "host": socket.gethostname(),
                "pid": os.getpid(),
            })
        assert row is not None
        bulk_id = row["id"]
        audit(self.db, viewer, f"{action}_all" if action != "clear" else "clear", target,
              "started", {**detail, "bulk": str(bulk_id)})
        thread = threading.Thread(target=self._run, args=(bulk_id, viewer, action, f, queue),
                                  name=f"bulk-{bulk_id}", daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        return bulk_id

    def _run(self, bulk_id: uuid.UUID, viewer: Viewer, action: str, f: JobFilter | None,
             queue: str | None) -> None:
        status, error = "done", None
        try:
            if action == "clear":
                with self.db.owner() as conn:
                    deleted = queue_ops.clear(conn, str(queue))
                self._progress(bulk_id, deleted, Batch(changed=deleted))
            else:
                assert f is not None
                self._walk(bulk_id, viewer, action, f)
        except Exception as exc:  # recorded on the action's row and logged: never silent
            status, error = "failed", f"{type(exc).__name__}: {exc}"[:1000]
            logger.exception("event=bulk_failed bulk=%s action=%s", bulk_id, action)
        with self.db.owner() as conn:
            conn.execute(queries.FINISH_BULK, {"id": bulk_id, "status": status, "error": error})
        audit(self.db, viewer, f"{action}_all" if action != "clear" else "clear",
              str(bulk_id), status, {"bulk": str(bulk_id), "error": error})

    def _walk(self, bulk_id: uuid.UUID, viewer: Viewer, action: str, f: JobFilter) -> None:
        cursor: Cursor | None = None
        while True:
            with self.db.reader(viewer) as conn:
                page = matching_ids(conn, viewer, f, cursor, self.batch_size)
            if not page:
                return
            ids = [mid for mid, _ in page]
            batch = self._cancel(viewer, ids) if action == "cancel" else self._retry(ids)
            self._progress(bulk_id, len(ids), batch)
            last_id, last_at = page[-1]
            cursor = Cursor(last_at, last_id)
            if len(page) < self.batch_size:
                return

    def _retry(self, ids: list[uuid.UUID]) -> Batch:
        """One transaction for the batch; if the batch is refused, job by job."""
        with self.db.owner() as conn:
            try:
                return Batch(changed=len(control.retry(conn, ids).changed))
            except OpsError:
                pass  # one job changed meanwhile (or its unique key is taken): go one by one
            batch = Batch()
            for job_id in ids:
                try:
                    control.retry(conn, [job_id])
                    batch.changed += 1
                except OpsError:
                    batch.skipped += 1
            return batch

    def _cancel(self, viewer: Viewer, ids: list[uuid.UUID]) -> Batch:
        if not viewer.operator:
            assert viewer.tenant_id is not None
            with tenant_session(viewer.tenant_id) as session:
                outcomes = cancel_many(session, ids, reason=f"cancelled by {viewer.name} "
                                                            "(dashboard)")
            changed = sum(1 for o in outcomes.values() if o == "cancelled")
            return Batch(changed=changed, skipped=len(ids) - changed)
        with self.db.owner() as conn:
            try:
                result = control.cancel(conn, ids, reason=f"cancelled by {viewer.name} "
                                                          "(dashboard)")
                return Batch(changed=len(result.changed))
            except OpsError:
                pass
            batch = Batch()
            for job_id in ids:
                try:
                    control.cancel(conn, [job_id], reason=f"cancelled by {viewer.name} "
                                                          "(dashboard)")
                    batch.changed += 1
                except OpsError:
                    batch.skipped += 1
            return batch

    def _progress(self, bulk_id: uuid.UUID, processed: int, batch: Batch) -> None:
        with self.db.owner() as conn:
            conn.execute(queries.BULK_PROGRESS, {"id": bulk_id, "processed": processed,
                                                 "changed": batch.changed,
                                                 "skipped": batch.skipped})
        logger.info("event=bulk_batch bulk=%s processed=%d changed=%d skipped=%d", bulk_id,
                    processed, batch.changed, batch.skipped)
