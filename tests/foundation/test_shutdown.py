"""Graceful shutdown on SIGTERM: stop claiming, finish the job in hand, hand back the rest.

One worker thread: while its 2-second job runs, a job enqueued behind it is claimed into
the worker's memory (its prefetch: 2 x threads for slow jobs). SIGTERM must let the running
job finish, give the claimed one back without using up an attempt, claim nothing new, and
unregister the worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.foundation import actors
from tests.foundation.helpers import job_row, log_tail, marks, runs, start, worker_ids
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow  # real worker processes


def test_sigterm_finishes_in_flight_job_and_hands_back_the_rest(
    probes: TestDB, tmp_path: Path
) -> None:
    db = probes
    tenant = db.create_tenant()
    log = tmp_path / "first.log"
    first, first_id = start(db, tmp_path, "first", queues=[actors.QUEUE], threads=1)
    with tenant_session(tenant) as session:
        slow = enqueue(session, actors.work, 2.0).message_id
    wait_for(lambda: runs(db, slow), message="the 2-second job to start")
    with tenant_session(tenant) as session:
        behind = [enqueue(session, actors.work).message_id for _ in range(3)]
    claimed = wait_for(
        lambda: [m for m in behind if job_row(db, m)["state"] == "consumed"],
        message="a job behind it to be claimed into the worker's memory")
    assert len(claimed) == 1, "one thread: one running job and one prefetched"

    first.terminate()  # SIGTERM to dramatiq's main process, which forwards it
    wait_for(lambda: "Shutting down" in log.read_text(), message="the worker to start stopping")
    with tenant_session(tenant) as session:
        late = [enqueue(session, actors.work).message_id for _ in range(2)]
    assert first.wait(timeout=20) == 0, log_tail(log)

    assert job_row(db, slow)["state"] == "done" and marks(db, slow) == 1
    for message_id in behind + late:
        row = job_row(db, message_id)
        # Handed back: queued again, no attempt used, never run.
        assert (row["state"], row["attempts"], row["worker_id"]) == ("queued", 0, None)
        assert runs(db, message_id) == []
    # A stopping worker claims nothing new.
    assert [job_row(db, m)["started_at"] for m in late] == [None, None]
    assert first_id not in worker_ids(db)
    assert worker_ids(db) == set()

    start(db, tmp_path, "second", queues=[actors.QUEUE], threads=2)
    rest = behind + late
    wait_for(lambda: all(job_row(db, m)["state"] == "done" for m in rest),
             message="another worker to run the handed-back jobs")
    assert [job_row(db, m)["attempts"] for m in rest] == [1] * len(rest)
    assert [marks(db, m) for m in [slow, *rest]] == [1] * (1 + len(rest))
    assert job_row(db, slow)["attempts"] == 1
