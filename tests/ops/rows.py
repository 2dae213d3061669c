"""Job rows in any status, written directly as the owner, for tests of inspection and control.

The states mirror what the broker writes (see app/store): delayed rows wait in
'<queue>.DQ', dead letters are 'rejected' with last_error, cancelled ones carry cancelled_at.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from tests.support import TestDB

INSERT = """
INSERT INTO dramatiq.queue (message_id, queue_name, "state", message, tenant_id, actor_name,
                            eta, attempts, max_attempts, last_error, worker_id, started_at,
                            cancelled_at, "result", unique_key, unique_until, mtime)
VALUES (%(id)s, %(queue_name)s, %(state)s, %(message)s, %(tenant)s, %(actor)s,
        now() + make_interval(secs => %(eta_in)s), %(attempts)s, 3, %(error)s, %(worker)s,
        CASE WHEN %(started)s THEN now() - make_interval(secs => %(age)s) END,
        CASE WHEN %(cancelled)s THEN now() - make_interval(secs => %(age)s) END,
        %(result)s, %(key)s, %(unique_until)s, now() - make_interval(secs => %(age)s))
"""

SHAPES: dict[str, dict[str, Any]] = {
    "waiting": {"state": "queued"},
    "delayed": {"state": "queued", "dq": True, "eta_in": 3600},
    "retrying": {"state": "queued", "dq": True, "eta_in": 60, "attempts": 1,
                 "error": "RuntimeError: try again"},
    "active": {"state": "consumed", "attempts": 1, "started": True},
    "completed": {"state": "done", "attempts": 1, "started": True, "result": {"ok": 1}},
    "dead": {"state": "rejected", "attempts": 3, "started": True,
             "error": "RuntimeError: gave up"},
    "cancelled": {"state": "rejected", "cancelled": True, "error": "cancelled by operator"},
}
STATUSES = tuple(SHAPES)


def add_job(
    db: TestDB, status: str, *, queue: str = "mail", tenant: uuid.UUID | None = None,
    actor: str = "mail.send", worker: uuid.UUID | None = None, age: float = 0,
    unique_key: str | None = None, args: list[Any] | None = None,
) -> uuid.UUID:
    """One job row in ``status``; ``age`` seconds since it was due / changed state."""
    shape = SHAPES[status]
    message_id = uuid.uuid4()
    options: dict[str, Any] = {} if tenant is None else {"tenant_id": str(tenant)}
    if unique_key:
        options["unique_key"] = unique_key
    message = {"queue_name": queue, "actor_name": actor, "args": args or [status],
               "kwargs": {}, "options": options, "message_id": str(message_id),
               "message_timestamp": int(time.time() * 1000)}
    finished = shape["state"] in ("done", "rejected")
    with db.owner() as conn:
        conn.execute(INSERT, {
            "id": message_id, "queue_name": queue + (".DQ" if shape.get("dq") else ""),
            "state": shape["state"], "message": Jsonb(message), "tenant": tenant,
            "actor": actor, "eta_in": shape.get("eta_in", -age), "age": age,
            "attempts": shape.get("attempts", 0), "error": shape.get("error"),
            "worker": worker if shape["state"] in ("consumed", "done") else None,
            "started": shape.get("started", False), "cancelled": shape.get("cancelled", False),
            "result": Jsonb(shape["result"]) if "result" in shape else None,
            "key": unique_key, "unique_until": None,
        })
        if finished and unique_key:
            conn.execute("UPDATE dramatiq.queue SET unique_until = mtime WHERE message_id = %s",
                         (message_id,))
    return message_id


def add_worker(db: TestDB, *, heartbeat_age: float = 0, queues: list[str] | None = None
               ) -> uuid.UUID:
    worker_id = uuid.uuid4()
    db.query(
        "INSERT INTO dramatiq.workers (worker_id, hostname, pid, queues, heartbeat_at, "
        "lease_seconds, lease_expires_at) VALUES (%s, 'test-host', 4242, %s, "
        "now() - make_interval(secs => %s), 10, now() - make_interval(secs => %s - 10)) "
        "RETURNING 1",
        (worker_id, queues or ["mail"], heartbeat_age, heartbeat_age),
    )
    return worker_id


def status_of(db: TestDB, message_id: uuid.UUID | str) -> str | None:
    return db.scalar("SELECT status FROM jobs.jobs WHERE message_id = %s", (message_id,))
