"""Schedules edited in the table apply without a restart: cron, per-tenant overrides, disable."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.scheduler.processes import (
    leader_pid,
    only_test_schedule,
    slots_by_tenant,
    start_scheduler,
)
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow  # real scheduler processes


def jobs(db: TestDB) -> list[str]:
    return [r[0] for r in db.query("SELECT job_id FROM scheduler.jobs ORDER BY 1")]


def synced_after(db: TestDB, moment: datetime) -> bool:
    return bool(db.scalar("SELECT max(last_sync_at) > %s FROM scheduler.instances "
                          "WHERE role = 'leader'", (moment,)))


def test_table_edits_take_effect_without_restart(db: TestDB, logs: Path) -> None:
    a, b = db.create_tenant("a"), db.create_tenant("b")
    only_test_schedule(db, cron="0 0 1 1 *")  # once a year: nothing fires during the test
    proc = start_scheduler(db, logs / "s.log")
    wait_for(lambda: leader_pid(db) == proc.pid, timeout=20, message="the leader")
    wait_for(lambda: jobs(db) == ["test.tick|0 0 1 1 *|UTC"], message="the yearly job")
    next_fire = db.scalar("SELECT next_fire_at FROM scheduler.jobs")
    assert next_fire.month == 1 and next_fire.day == 1

    # 1. A new cron expression: the next sync swaps the job, slots start within seconds.
    t0 = time.monotonic()
    db.query("UPDATE scheduler.recurring SET cron = '* * * * * *' WHERE task = 'test.tick' "
             "RETURNING 1")
    wait_for(lambda: len(slots_by_tenant(db).get(a, [])) >= 1, message="the first slot")
    print(f"\ncron edit -> first slot enqueued after {time.monotonic() - t0:.2f}s")
    assert jobs(db) == ["test.tick|* * * * * *|UTC"]

    # 2. Tenant b switched off by an override: applied at the next firing.
    off_at = db.scalar("SELECT now()")
    db.query("INSERT INTO scheduler.tenant_overrides (task, tenant_id, enabled) "
             "VALUES ('test.tick', %s, false) RETURNING 1", (b,))
    cutoff = off_at + timedelta(seconds=1)
    wait_for(lambda: sum(s > cutoff for s in slots_by_tenant(db)[a]) >= 2,
             message="2 slots for a after the override")
    assert not [s for s in slots_by_tenant(db).get(b, []) if s > cutoff]

    # 3. Tenant b on its own schedule (even seconds): a job of its own appears.
    db.query("UPDATE scheduler.tenant_overrides SET enabled = true, cron = '*/2 * * * * *' "
             "WHERE tenant_id = %s RETURNING 1", (b,))
    wait_for(lambda: len(jobs(db)) == 2, message="b's own schedule")
    back_at = db.scalar("SELECT now()")
    wait_for(lambda: sum(s > back_at for s in slots_by_tenant(db).get(b, [])) >= 2,
             message="2 slots for b on its own schedule")
    assert all(s.second % 2 == 0 for s in slots_by_tenant(db)[b] if s > back_at)

    # 4. Disabled: the jobs go away and nothing more is enqueued.
    db.query("UPDATE scheduler.recurring SET enabled = false RETURNING 1")
    db.query("DELETE FROM scheduler.tenant_overrides RETURNING 1")
    wait_for(lambda: jobs(db) == [], message="the jobs to be removed")
    count = db.scalar("SELECT count(*) FROM dramatiq.queue")
    seen = datetime.now(UTC) + timedelta(seconds=1.5)
    wait_for(lambda: synced_after(db, seen), message="two more syncs")
    assert db.scalar("SELECT count(*) FROM dramatiq.queue") == count
    assert proc.poll() is None
