"""Slow jobs are shared between worker processes: none claims more than it can start soon.

A consumer claims ahead only as much work as its measured pace finishes within a moment
(``app.broker.consumer.HOLD_SECONDS``): dramatiq's 2 x threads for slow jobs, up to the
claim batch for fast ones. Were it to claim the whole batch regardless, the first process
woken would take every slow job and the other's idle threads would wait for minutes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.foundation import actors
from tests.foundation.helpers import job_row, start, state
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow  # real worker processes


def test_two_idle_workers_share_a_burst_of_slow_jobs(probes: TestDB, tmp_path: Path) -> None:
    db = probes
    tenant = db.create_tenant()
    _, first = start(db, tmp_path, "first", queues=[actors.QUEUE], threads=2)
    _, second = start(db, tmp_path, "second", queues=[actors.QUEUE], threads=2)
    with tenant_session(tenant) as session:
        ids = [enqueue(session, actors.work, 1.0).message_id for _ in range(8)]
    wait_for(lambda: all(state(db, i) == "done" for i in ids), timeout=40,
             message="the eight slow jobs to finish")
    ran_on = [job_row(db, i)["worker_id"] for i in ids]
    # 2 threads x 2 in flight each: four per process, whichever was woken first (a
    # process that finished its four early may take more from a late one: not below 2).
    assert set(ran_on) == {first, second}, ran_on
    assert min(ran_on.count(first), ran_on.count(second)) >= 2, ran_on
