"""Two real scheduler processes on a per-second cron: every slot once per tenant, none missed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scheduler.processes import (
    assert_contiguous_once,
    leader_pid,
    only_test_schedule,
    slots_by_tenant,
    start_scheduler,
)
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow  # real scheduler processes


def test_two_schedulers_fire_each_slot_exactly_once_per_tenant(db: TestDB, logs: Path) -> None:
    tenants = [db.create_tenant("a"), db.create_tenant("b"), db.create_tenant("c")]
    inactive = db.create_tenant("off", active=False)
    only_test_schedule(db)
    first = start_scheduler(db, logs / "s1.log")
    second = start_scheduler(db, logs / "s2.log")
    wait_for(lambda: leader_pid(db), timeout=20, message="a leader")
    wait_for(lambda: db.scalar("SELECT count(*) FROM scheduler.instances "
                               "WHERE role = 'standby'") == 1, message="one standby")
    # One read per check: two could see no slot yet, then the first (all([]) is True).
    wait_for(lambda: (lambda s: len(s) == 3 and all(len(v) >= 7 for v in s.values()))(
        slots_by_tenant(db)), timeout=30, message="7 slots for every tenant")
    assert first.poll() is None and second.poll() is None
    slots = slots_by_tenant(db)
    assert set(slots) == set(tenants) and inactive not in slots
    for tenant in tenants:
        assert_contiguous_once(slots[tenant], 7)
    # Every tenant got the same slots: the fan-out is one transaction per slot.
    assert len({tuple(s[:7]) for s in slots.values()}) == 1
    keys = db.scalar("SELECT count(DISTINCT unique_key) = count(*) FROM dramatiq.queue")
    assert keys


def test_split_brain_two_leaders_still_fire_each_slot_once(db: TestDB, logs: Path) -> None:
    """Two leaders at once (different lock keys, as if the lock failed): the ledger row lock
    and the unique keys still give every tenant every slot exactly once."""
    tenants = [db.create_tenant("a"), db.create_tenant("b")]
    only_test_schedule(db)
    start_scheduler(db, logs / "s1.log", SCHEDULER_LOCK_KEY="brain-1")
    start_scheduler(db, logs / "s2.log", SCHEDULER_LOCK_KEY="brain-2")
    wait_for(lambda: all(len(slots_by_tenant(db).get(t, [])) >= 6 for t in tenants),
             timeout=30, message="6 slots for every tenant")
    both_led = [(logs / f"s{i}.log").read_text().count("event=leader_elected") for i in (1, 2)]
    assert both_led == [1, 1], "both processes must have led at once for this drill"
    for slots in slots_by_tenant(db).values():
        assert_contiguous_once(slots, 6)
