"""A worker killed with SIGKILL: its unfinished job runs again, a committed one never does.

Leases make this work: the dead worker stops heartbeating, another worker's heartbeat
rescues the rows it held (JOBS_LEASE_SECONDS=3 here), and a job whose completion committed
with its work is 'done' already, so nothing brings it back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.foundation import actors
from tests.foundation.helpers import job_row, kill, marks, runs, start, state, worker_ids
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow  # real worker processes


def test_sigkill_mid_job_reruns_it_but_not_a_committed_job(
    probes: TestDB, tmp_path: Path
) -> None:
    db = probes
    tenant = db.create_tenant()
    first, first_id = start(db, tmp_path, "first", queues=[actors.QUEUE], threads=2)
    with tenant_session(tenant) as session:
        committed = enqueue(session, actors.work).message_id
        # Sleeps far longer than the test on its first attempt: killed mid-job.
        stuck = enqueue(session, actors.work, 120, first_attempt_only=True).message_id
    wait_for(lambda: state(db, committed) == "done" and runs(db, stuck),
             message="one job to commit and the other to be running")
    assert marks(db, committed) == 1

    kill(first)
    assert job_row(db, stuck)["state"] == "consumed"  # held by a dead worker

    start(db, tmp_path, "second", queues=[actors.QUEUE])
    wait_for(lambda: state(db, stuck) == "done", timeout=25,
             message="the killed job to be rescued and run again")
    # Rescue happened (the dead worker is forgotten) and re-ran only the unfinished job.
    assert first_id not in worker_ids(db)
    assert [a for a, _ in runs(db, stuck)] == [1, 2]
    assert marks(db, stuck) == 1  # the killed attempt's work never committed
    row = job_row(db, stuck)
    assert row["attempts"] == 2
    assert row["last_error"] == "worker lost during attempt 1"
    assert [a for a, _ in runs(db, committed)] == [1]
    assert marks(db, committed) == 1
    assert job_row(db, committed)["attempts"] == 1
