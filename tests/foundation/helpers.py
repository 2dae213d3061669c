"""Helpers of the foundation tests: job rows, recorded runs, real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.support import TestDB, wait_for

#: Short leases so rescue happens within seconds of a worker's death.
FAST = {"JOBS_LEASE_SECONDS": "3", "JOBS_HEARTBEAT_SECONDS": "0.5", "JOBS_POLL_SECONDS": "1"}
ACTORS = "tests.foundation.actors"


def job_row(db: TestDB, message_id: str) -> dict[str, Any]:
    with db.owner() as conn:
        cur = conn.execute(
            'SELECT queue_name, "state"::text AS state, attempts, max_attempts, last_error, '
            "eta, started_at, mtime, worker_id, result FROM dramatiq.queue "
            "WHERE message_id = %s", (message_id,))
        row = cur.fetchone()
        assert row is not None, f"no job row {message_id}"
        return dict(zip([c.name for c in cur.description or ()], row, strict=True))


def state(db: TestDB, message_id: str) -> str:
    return str(db.scalar('SELECT "state"::text FROM dramatiq.queue WHERE message_id = %s',
                         (message_id,)))


def runs(db: TestDB, message_id: str) -> list[tuple[int, Any]]:
    """(attempt, start time) of each recorded run of a job, oldest first."""
    return [(a, t) for a, t in db.query(
        "SELECT attempt, at FROM foundation_runs WHERE message_id = %s ORDER BY at",
        (message_id,))]


def marks(db: TestDB, message_id: str) -> int:
    return int(db.scalar("SELECT count(*) FROM foundation_marks WHERE message_id = %s",
                         (message_id,)))


def worker_ids(db: TestDB) -> set[Any]:
    return {w for (w,) in db.query("SELECT worker_id FROM dramatiq.workers")}


def start(db: TestDB, tmp_path: Path, name: str, *, queues: list[str], threads: int = 2,
          **env: str) -> tuple[subprocess.Popen[bytes], Any]:
    """A real worker process (one child); returns it once it has registered, and its id."""
    before = worker_ids(db)
    proc = db.start_worker(ACTORS, processes=1, threads=threads, queues=queues,
                           log=tmp_path / f"{name}.log", **{**FAST, **env})

    def registered() -> set[Any]:
        assert proc.poll() is None, log_tail(tmp_path / f"{name}.log")
        return worker_ids(db) - before

    (worker_id,) = wait_for(registered, timeout=30, message=f"worker {name} to register")
    return proc, worker_id


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """SIGTERM to dramatiq's main process only (it forwards it to its worker processes)."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group: main process and worker processes die at once."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (dramatiq's worker processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, ...
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
