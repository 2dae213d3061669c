"""Helpers of the messaging tests: worker processes, job and delivery rows."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.support import TestDB, wait_for

QUEUES = ["notifications", "messages", "reminders", "sms-notifications", "email-digests",
          "scheduled"]


def worker_ids(db: TestDB) -> set[Any]:
    return {w for (w,) in db.query("SELECT worker_id FROM dramatiq.workers")}


def log_tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_worker(db: TestDB, tmp_path: Path, name: str, env: dict[str, str], *,
                 threads: int = 4, queues: list[str] | None = None) -> subprocess.Popen[bytes]:
    """A real ``dramatiq app.actors`` process, returned once it has registered."""
    before = worker_ids(db)
    log = tmp_path / f"{name}.log"
    proc = db.start_worker("app.actors", processes=1, threads=threads,
                           queues=queues or QUEUES, log=log, **env)

    def registered() -> bool:
        assert proc.poll() is None, log_tail(log)
        return bool(worker_ids(db) - before)

    wait_for(registered, timeout=30, message=f"worker {name} to register")
    return proc


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole dramatiq process group (main process and worker) at once."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def job(db: TestDB, job_id: str) -> dict[str, Any]:
    with db.owner() as conn:
        cur = conn.execute('SELECT "state"::text AS state, attempts, last_error, queue_name, '
                           "eta, result FROM dramatiq.queue WHERE message_id = %s", (job_id,))
        row = cur.fetchone()
        assert row is not None, f"no job {job_id}"
        return dict(zip([c.name for c in cur.description or ()], row, strict=True))


def job_state(db: TestDB, job_id: str) -> str | None:
    value = db.scalar('SELECT "state"::text FROM dramatiq.queue WHERE message_id = %s',
                      (job_id,))
    return None if value is None else str(value)


def delivery(db: TestDB, job_id: str) -> dict[str, Any] | None:
    with db.owner() as conn:
        cur = conn.execute("SELECT * FROM deliveries WHERE job_id = %s", (job_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([c.name for c in cur.description or ()], row, strict=True))


def delivery_status(db: TestDB, job_id: str) -> str | None:
    found = delivery(db, job_id)
    return None if found is None else str(found["status"])
