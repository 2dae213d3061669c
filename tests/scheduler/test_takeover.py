"""Leader loss: SIGKILL hands over to a standby within seconds, SIGTERM at once; no slot is
lost or doubled across the change (the ledger catches the gap up)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from app.scheduler.health import scheduler_status
from tests.scheduler.processes import (
    assert_contiguous_once,
    leader_pid,
    only_test_schedule,
    slots_by_tenant,
    start_scheduler,
)
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow  # real scheduler processes


def newest_slot(db: TestDB) -> datetime | None:
    return db.scalar("SELECT max((message->'kwargs'->>'slot')::timestamptz) "
                     "FROM dramatiq.queue WHERE unique_key LIKE 'test.tick:%%'")


def leader_and_standby(db: TestDB, logs: Path) -> tuple[subprocess.Popen[bytes], ...]:
    """Two scheduler processes: the first leads, the second stands by."""
    first = start_scheduler(db, logs / "s1.log")
    wait_for(lambda: leader_pid(db) == first.pid, timeout=20, message="s1 to lead")
    second = start_scheduler(db, logs / "s2.log")
    wait_for(lambda: db.scalar("SELECT count(*) FROM scheduler.instances "
                               "WHERE role = 'standby'") == 1, message="s2 standing by")
    return first, second


def test_sigkill_of_the_leader_standby_takes_over_within_seconds(
    db: TestDB, logs: Path
) -> None:
    tenants = [db.create_tenant("a"), db.create_tenant("b")]
    only_test_schedule(db)
    first, second = leader_and_standby(db, logs)
    wait_for(lambda: len(slots_by_tenant(db).get(tenants[0], [])) >= 3, message="3 slots")

    killed_at, t0 = datetime.now(UTC), time.monotonic()
    os.killpg(first.pid, signal.SIGKILL)
    wait_for(lambda: leader_pid(db) == second.pid, timeout=15, message="s2 to lead")
    leader_after = time.monotonic() - t0
    wait_for(lambda: (newest_slot(db) or killed_at) > killed_at, timeout=15,
             message="a slot after the kill")
    firing_after = time.monotonic() - t0
    print(f"\ntakeover: leader after {leader_after:.2f}s, first new slot after "
          f"{firing_after:.2f}s (lock retry 0.5s)")
    assert leader_after < 5.0
    # Three more slots by the new leader, then: nothing missed, nothing twice.
    last = newest_slot(db)
    assert last is not None
    wait_for(lambda: (newest_slot(db) or last).timestamp() >= last.timestamp() + 3,
             message="3 more slots")
    for tenant in tenants:
        assert_contiguous_once(slots_by_tenant(db)[tenant], 6)
    with psycopg.connect(db.owner_url) as conn:
        status = scheduler_status(conn)
    assert status["healthy"] and status["leader"]["pid"] == second.pid
    assert status["jobs"][0]["task"] == "test.tick" and status["jobs"][0]["next_fire_at"]
    assert status["last_tick_at"]
    assert [i["role"] for i in status["instances"] if i["pid"] == first.pid] == ["lost"]


def test_sigterm_stops_gracefully_and_the_standby_takes_over(db: TestDB, logs: Path) -> None:
    tenant = db.create_tenant("a")
    only_test_schedule(db)
    first, second = leader_and_standby(db, logs)
    wait_for(lambda: len(slots_by_tenant(db).get(tenant, [])) >= 2, message="2 slots")
    t0 = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == 0
    stopped_in = time.monotonic() - t0
    wait_for(lambda: leader_pid(db) == second.pid, timeout=10, message="s2 to lead")
    print(f"\nSIGTERM: exited in {stopped_in:.2f}s, standby led after "
          f"{time.monotonic() - t0:.2f}s")
    assert "event=scheduler_stopped" in (logs / "s1.log").read_text()
    assert db.scalar("SELECT count(*) FROM scheduler.instances WHERE pid = %s",
                     (first.pid,)) == 0
    before = len(slots_by_tenant(db)[tenant])
    wait_for(lambda: len(slots_by_tenant(db)[tenant]) >= before + 2, message="2 more slots")
    assert_contiguous_once(slots_by_tenant(db)[tenant], before + 2)
