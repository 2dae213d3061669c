"""Helpers of the fault tests: bulk enqueue, worker processes, and the final accounting."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.db.tenant import tenant_session
from app.jobs import enqueue_many
from tests.faults import actors
from tests.support import TestDB, wait_for

#: Short leases so a dead worker's jobs are rescued within seconds; dramatiq restarts a
#: consumer 0.5 s after a connection error instead of 3 s. No retention: the finished rows
#: are the evidence these tests count.
FAST = {
    "JOBS_LEASE_SECONDS": "3", "JOBS_HEARTBEAT_SECONDS": "0.5", "JOBS_POLL_SECONDS": "1",
    "JOBS_MAINTENANCE_SECONDS": "0", "dramatiq_restart_delay": "500",
}
MODULE = "tests.faults.actors"


def enqueue_jobs(tenants: Sequence[uuid.UUID], count: int, *, start: int = 0,
                 blob: str = "", engine: Any = None) -> list[str]:
    """Enqueue ``count`` write jobs spread over ``tenants``, one transaction per tenant."""
    ids: list[str] = []
    per_tenant: dict[uuid.UUID, list[int]] = {t: [] for t in tenants}
    for i in range(start, start + count):
        per_tenant[tenants[i % len(tenants)]].append(i)
    for tenant, numbers in per_tenant.items():
        if not numbers:
            continue
        with tenant_session(tenant, engine=engine) as session:
            items = [((n,), {"blob": blob} if blob else {}) for n in numbers]
            ids += [r.message_id for r in enqueue_many(session, actors.write, items)]
    return ids


@dataclass
class Accounting:
    """What became of every job: the figures each scenario asserts on."""

    jobs: int
    states: dict[str, int]
    effects: int
    duplicated: int
    missing: int

    @property
    def done(self) -> int:
        return self.states.get("done", 0)


def account(db: TestDB) -> Accounting:
    """Job states, and committed effects per job id (joined with the job rows)."""
    states = dict(db.query('SELECT "state"::text, count(*) FROM dramatiq.queue GROUP BY 1'))
    jobs = sum(states.values())
    effects = db.scalar("SELECT count(*) FROM fault_effects")
    duplicated = db.scalar(
        "SELECT count(*) FROM (SELECT message_id FROM fault_effects GROUP BY message_id "
        "HAVING count(*) > 1) d")
    missing = db.scalar(
        "SELECT count(*) FROM dramatiq.queue q WHERE q.state = 'done' AND NOT EXISTS "
        "(SELECT 1 FROM fault_effects e WHERE e.message_id = q.message_id)")
    return Accounting(jobs, states, effects, duplicated, missing)


def done_count(db: TestDB) -> int:
    return int(db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'done'"))


def assert_exactly_once(db: TestDB, expected_jobs: int) -> Accounting:
    """Every job done, and exactly one committed row per job: none lost, none duplicated."""
    acc = account(db)
    assert acc.jobs == expected_jobs, acc
    assert acc.states == {"done": expected_jobs}, acc
    assert acc.duplicated == 0, acc
    assert acc.missing == 0, acc
    assert acc.effects == expected_jobs, acc
    return acc


def worker_ids(db: TestDB) -> set[Any]:
    return {w for (w,) in db.query("SELECT worker_id FROM dramatiq.workers")}


def spawn_worker(db: TestDB, tmp_path: Path, name: str, *, threads: int = 4,
                 **env: str) -> Callable[[], tuple[subprocess.Popen[bytes], Any]]:
    """Start a real ``dramatiq`` process (one worker process) on the faults queue; returns
    a function that waits for it to register and gives it and its worker id."""
    before = worker_ids(db)
    log = tmp_path / f"{name}.log"
    proc = db.start_worker(MODULE, processes=1, threads=threads, queues=[actors.QUEUE],
                           log=log, **{**FAST, **env})

    def registered() -> set[Any]:
        assert proc.poll() is None, log_tail(log)
        return worker_ids(db) - before

    def wait() -> tuple[subprocess.Popen[bytes], Any]:
        (worker_id,) = wait_for(registered, timeout=30, message=f"worker {name} to register")
        return proc, worker_id

    return wait


def start_worker(db: TestDB, tmp_path: Path, name: str, *, threads: int = 4,
                 **env: str) -> tuple[subprocess.Popen[bytes], Any]:
    """A real worker process, once it has registered, and its worker id."""
    return spawn_worker(db, tmp_path, name, threads=threads, **env)()


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL dramatiq's whole process group: main and worker process die at once."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def wait_progress(db: TestDB, target: int, *, timeout: float,
                  alive: Callable[[], None] | None = None) -> float:
    """Wait until ``target`` jobs are done; returns the seconds it took."""
    started = time.monotonic()

    def reached() -> bool:
        if alive is not None:
            alive()
        return done_count(db) >= target

    wait_for(reached, timeout=timeout, interval=0.1, message=f"{target} jobs done")
    return time.monotonic() - started


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
