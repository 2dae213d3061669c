"""SIGKILL worker processes again and again during a 20,000-job run: none lost, none doubled.

Two worker processes drain jobs that each write one row under their tenant's RLS context,
committed with the job's completion. One of them is killed with SIGKILL several times mid-run
and started again; the survivor's heartbeat rescues the dead one's jobs (3 s leases here).
At the end every job is done and has exactly one committed row.
"""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID

import pytest

from tests.faults.helpers import (
    assert_exactly_once,
    done_count,
    enqueue_jobs,
    kill,
    log_tail,
    spawn_worker,
    start_worker,
    wait_progress,
    worker_ids,
)
from tests.support import TestDB, wait_for

JOBS = 20_000
KILLS = 4


def held_by(db: TestDB, worker_id: object) -> int:
    return int(db.scalar(
        "SELECT count(*) FROM dramatiq.queue WHERE state = 'consumed' AND worker_id = %s",
        (worker_id,)))


@pytest.mark.slow
def test_repeated_sigkill_loses_and_duplicates_nothing(
    effects: TestDB, tenants: list[UUID], tmp_path: Path
) -> None:
    db = effects
    enqueue_jobs(tenants, JOBS)
    started = time.monotonic()
    survivor, _ = start_worker(db, tmp_path, "survivor")
    victim, victim_id = start_worker(db, tmp_path, "victim-0")

    def survivor_alive() -> None:
        assert survivor.poll() is None, log_tail(tmp_path / "survivor.log")

    rescue_seconds, killed, in_flight = [], [], []
    for kill_no in range(1, KILLS + 1):
        wait_progress(db, JOBS * kill_no // (KILLS + 2), timeout=60, alive=survivor_alive)
        # Kill it while it holds jobs (a just-restarted victim may not have claimed yet).
        wait_for(lambda v=victim_id: held_by(db, v) > 0, timeout=30, interval=0.01,
                 message="the victim to hold jobs")
        kill(victim)
        killed_at = time.monotonic()
        dead = victim_id
        killed.append(dead)
        in_flight.append(held_by(db, dead))
        restarted = spawn_worker(db, tmp_path, f"victim-{kill_no}")
        # The survivor's heartbeat hands the dead process's jobs back once its lease lapses.
        wait_for(lambda dead=dead: held_by(db, dead) == 0, timeout=20,
                 message="the killed worker's jobs to be rescued")
        rescue_seconds.append(time.monotonic() - killed_at)
        victim, victim_id = restarted()

    wait_for(lambda: done_count(db) == JOBS, timeout=90, interval=0.2,
             message="every job to finish")
    elapsed = time.monotonic() - started
    acc = assert_exactly_once(db, JOBS)
    rescued = db.scalar("SELECT count(*) FROM dramatiq.queue WHERE attempts > 1")
    print(f"\nsigkill: jobs={acc.jobs} done={acc.done} effects={acc.effects} "
          f"duplicated={acc.duplicated} kills={KILLS} rescued_jobs={rescued} "
          f"in_flight={in_flight} rescue_s={[round(s, 1) for s in rescue_seconds]} "
          f"run_s={elapsed:.1f}")
    # The kills really hit jobs in flight, and each was rescued within the lease + a beat.
    assert sum(in_flight) > 0, in_flight
    assert rescued > 0
    assert max(rescue_seconds) < 15
    assert not set(killed) & worker_ids(db)  # the dead are forgotten, not left registered
    survivor_alive()
