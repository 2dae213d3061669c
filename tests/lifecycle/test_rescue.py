"""Rescue with real worker processes: a SIGKILLed worker's job is back within the lease, a
live worker's long job is never stolen, and a job that kills its worker ends as a dead letter.

Leases are short here (JOBS_LEASE_SECONDS=3, heartbeat 0.5 s); the rescue time measured
in the first test is printed (``-s``) and asserted to be within the lease plus two beats.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from app.jobs import enqueue
from tests.lifecycle import actors
from tests.support import TestDB, wait_for

LEASE, BEAT = 3.0, 0.5
FAST = {"JOBS_LEASE_SECONDS": str(LEASE), "JOBS_HEARTBEAT_SECONDS": str(BEAT),
        "JOBS_POLL_SECONDS": "1", "JOBS_MAINTENANCE_SECONDS": "0"}
ACTORS = "tests.lifecycle.actors"


def workers(db: TestDB) -> dict[Any, int]:
    """Registered workers: worker id -> pid of the dramatiq worker process."""
    return dict(db.query("SELECT worker_id, pid FROM dramatiq.workers"))


def start(db: TestDB, tmp_path: Path, *names: str, **env: str) -> list[subprocess.Popen[bytes]]:
    """Real worker processes (one dramatiq worker process each), started together."""
    before = set(workers(db))
    procs = [db.start_worker(ACTORS, processes=1, threads=2, queues=[actors.QUEUE],
                             log=tmp_path / f"{name}.log", **{**FAST, **env}) for name in names]

    def registered() -> bool:
        for name, proc in zip(names, procs, strict=True):
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
        return len(set(workers(db)) - before) == len(names)

    wait_for(registered, timeout=30, message=f"workers {names} to register")
    return procs


def row(db: TestDB, message_id: str) -> dict[str, Any]:
    with db.owner() as conn:
        cur = conn.execute('SELECT "state"::text AS state, attempts, last_error, worker_id '
                           "FROM dramatiq.queue WHERE message_id = %s", (message_id,))
        values = cur.fetchone()
        assert values is not None
        return dict(zip([c.name for c in cur.description or ()], values, strict=True))


def send(db: TestDB, actor: Any, *args: Any) -> str:
    with psycopg.connect(db.worker_url) as conn:
        return enqueue(conn, actor, *args).message_id


def runs(db: TestDB, message_id: str) -> list[tuple[int, int]]:
    return db.query("SELECT attempt, pid FROM lifecycle_runs WHERE message_id = %s ORDER BY seq",
                    (message_id,))


def test_sigkilled_worker_job_is_rescued_within_the_lease(probes: TestDB, tmp_path: Path) -> None:
    db = probes
    # The lease path, as for a worker on another host: no looking at the dead PID.
    start(db, tmp_path, "a", "b", JOBS_NEIGHBOUR_RESCUE="0")
    job = send(db, actors.sleepy, 60, True)  # long on its first attempt only
    wait_for(lambda: runs(db, job), message="the job to start")
    holder = row(db, job)["worker_id"]
    victim = workers(db)[holder]

    os.kill(victim, signal.SIGKILL)  # the worker process itself, mid-job
    killed = time.monotonic()
    wait_for(lambda: row(db, job)["state"] != "consumed", timeout=LEASE + 10,
             message="the job to be rescued")
    rescued_after = time.monotonic() - killed
    wait_for(lambda: row(db, job)["state"] == "done", timeout=15, message="the rerun to finish")
    done_after = time.monotonic() - killed
    print(f"\nrescue: back in its queue {rescued_after:.2f}s after SIGKILL, completed "
          f"{done_after:.2f}s after (lease {LEASE:g}s, heartbeat {BEAT:g}s)")

    assert LEASE - BEAT <= rescued_after <= LEASE + 2 * BEAT + 1.0
    final = row(db, job)
    assert final["attempts"] == 2 and final["last_error"] == "worker lost during attempt 1"
    (first_pid, second_pid) = [pid for _, pid in runs(db, job)]
    assert first_pid == victim and second_pid != victim  # the surviving worker ran it
    assert holder not in workers(db)  # the dead worker was forgotten


def test_a_job_longer_than_the_lease_on_a_live_worker_is_not_stolen(
    probes: TestDB, tmp_path: Path
) -> None:
    db = probes
    env = {"JOBS_LEASE_SECONDS": "1", "JOBS_HEARTBEAT_SECONDS": "0.2"}
    start(db, tmp_path, "a", "b", **env)
    job = send(db, actors.sleepy, 2.5)  # 2.5 leases long
    wait_for(lambda: row(db, job)["state"] == "done", timeout=20, message="the job to finish")
    assert row(db, job)["attempts"] == 1
    assert len(runs(db, job)) == 1


def test_a_job_that_kills_its_worker_is_dead_lettered_after_its_attempts(
    probes: TestDB, tmp_path: Path
) -> None:
    db = probes
    procs = start(db, tmp_path, "a", "b", "c")
    job = send(db, actors.suicide)  # max_attempts=2
    wait_for(lambda: row(db, job)["state"] == "rejected", timeout=30,
             message="the job to be dead-lettered")
    final = row(db, job)
    assert final["attempts"] == 2
    assert final["last_error"] == "worker lost during the last attempt (2 attempts used)"
    assert [a for a, _ in runs(db, job)] == [1, 2]
    # It stays dead: the surviving worker is alive and never runs it again.
    survivor = next(p for p in procs if p.poll() is None)
    assert survivor.poll() is None
    wait_for(lambda: len(workers(db)) == 1, timeout=10, message="dead workers to be forgotten")
    assert row(db, job)["state"] == "rejected" and len(runs(db, job)) == 2
    logs = "".join((tmp_path / f"{n}.log").read_text(errors="replace") for n in "abc")
    assert logs.count(f"event=stalled message_id={job}") == 2
    assert logs.count(f"event=rescued message_id={job}") == 1
    assert logs.count(f"event=dead message_id={job}") == 1


def test_a_worker_on_the_same_host_takes_a_killed_neighbours_job_before_its_lease(
    probes: TestDB, tmp_path: Path
) -> None:
    """Survivor and restarted worker alike see the dead PID: no waiting for a 60 s lease."""
    db = probes
    long_lease = {"JOBS_LEASE_SECONDS": "60"}
    start(db, tmp_path, "a", "b", **long_lease)
    job = send(db, actors.sleepy, 60, True)
    wait_for(lambda: runs(db, job), message="the job to start")
    holder = row(db, job)["worker_id"]
    os.kill(workers(db)[holder], signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: row(db, job)["state"] == "done", timeout=15,
             message="the survivor to rescue and finish the job")
    print(f"\nsame-host rescue by a survivor: done {time.monotonic() - killed:.2f}s after "
          f"SIGKILL (lease 60s, heartbeat 0.5s)")
    assert row(db, job)["last_error"] == "worker lost during attempt 1"

    # Now the only worker dies holding a job, and a new one starts in its place.
    for proc in db.procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    db.procs.clear()
    start(db, tmp_path, "c", **long_lease)
    again = send(db, actors.sleepy, 60, True)
    wait_for(lambda: runs(db, again), message="the second job to start")
    for proc in db.procs:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    db.procs.clear()
    killed = time.monotonic()
    start(db, tmp_path, "d", **long_lease)
    wait_for(lambda: row(db, again)["state"] == "done", timeout=15,
             message="the restarted worker to rescue and finish the job")
    print(f"same-host rescue after a restart: done {time.monotonic() - killed:.2f}s after "
          "SIGKILL (worker start-up included)")
