"""Fan-out per tenant under RLS: each tenant's digest counts its own activity only, over the
previous day in its own time zone; a slot fired again enqueues nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import text

from app.config import get_settings
from app.db.tenant import tenant_session
from app.scheduler.cron import Schedule
from app.scheduler.definitions import load_schedules
from app.scheduler.firing import fire
from tests.support import TestDB, wait_for

EVENTS = """
INSERT INTO activity_events (tenant_id, event_type, title, source, created_at)
VALUES (%s, %s, 'event', 'test', %s) RETURNING 1
"""


def utc(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


def setup_tenants(db: TestDB) -> tuple[object, object]:
    a, b = db.create_tenant("jerusalem"), db.create_tenant("new-york")
    db.query("UPDATE tenants SET timezone = 'Asia/Jerusalem' WHERE id = %s RETURNING 1", (a,))
    db.query("UPDATE tenants SET timezone = 'America/New_York' WHERE id = %s RETURNING 1", (b,))
    db.query("INSERT INTO users (tenant_id, email) VALUES (%s, 'a1@x'), (%s, 'b1@x') "
             "RETURNING 1", (a, b))
    db.query("INSERT INTO users (tenant_id, email, daily_digest) VALUES (%s, 'a2@x', false) "
             "RETURNING 1", (a,))
    # Jerusalem's Nov 21 is 2026-11-20 22:00 .. 2026-11-21 22:00 UTC.
    for event_type, at in [("call.missed", "2026-11-20 22:30"), ("invoice.paid",
                           "2026-11-21 21:59"), ("call.missed", "2026-11-21 22:01"),
                           ("call.missed", "2026-11-20 21:59")]:
        db.query(EVENTS, (a, event_type, utc(at)))
    # New York's Nov 21 is 2026-11-21 05:00 .. 2026-11-22 05:00 UTC (it also contains a's
    # 21:59 event: only RLS keeps it out of b's digest).
    db.query(EVENTS, (b, "review.new", utc("2026-11-21 12:00")))
    return a, b


def daily_schedules() -> dict[str, Schedule]:
    with psycopg.connect(get_settings().worker_database_url) as conn:
        schedules, errors = load_schedules(conn)
    assert not errors
    return {s.timezone: s for s in schedules if s.task == "digests.daily"}


def test_digests_fan_out_per_tenant_in_its_time_zone_under_rls(
    db: TestDB, worker: object
) -> None:
    a, b = setup_tenants(db)
    schedules = daily_schedules()
    assert set(schedules) == {"Asia/Jerusalem", "America/New_York"}
    for tz, schedule in schedules.items():
        due = datetime(2026, 11, 22, 7, tzinfo=ZoneInfo(tz))
        firing = fire(schedule, due)
        assert (firing.tenants, firing.enqueued, firing.duplicates) == (1, 1, 0)

    wait_for(lambda: db.scalar("SELECT count(*) FROM digests") == 2, message="2 digests")
    rows = {r[0]: r[1:] for r in db.query(
        "SELECT tenant_id, counts, total, period_start, period_end, status FROM digests")}
    assert rows[a] == ({"call.missed": 1, "invoice.paid": 1}, 2, utc("2026-11-20 22:00"),
                       utc("2026-11-21 22:00"), "ready")
    assert rows[b] == ({"review.new": 1}, 1, utc("2026-11-21 05:00"),
                       utc("2026-11-22 05:00"), "ready")
    # The application role of tenant a sees its own digest and jobs only.
    with tenant_session(a) as session:
        assert session.execute(text("SELECT count(*) FROM digests")).scalar() == 1
        tenants = session.execute(text("SELECT DISTINCT tenant_id FROM dramatiq.queue")).all()
        assert tenants == [(a,)]
    keys = db.query("SELECT tenant_id, unique_key FROM dramatiq.queue "
                    "WHERE actor_name = 'digests.daily'")
    assert sorted(keys) == sorted([
        (a, f"digests.daily:{a}:2026-11-22T05:00:00+00:00"),
        (b, f"digests.daily:{b}:2026-11-22T12:00:00+00:00"),
    ])


def test_a_slot_fired_twice_enqueues_once(db: TestDB, broker: object) -> None:
    setup_tenants(db)
    schedule = daily_schedules()["Asia/Jerusalem"]
    due = datetime(2026, 11, 22, 7, tzinfo=ZoneInfo("Asia/Jerusalem"))
    assert fire(schedule, due).enqueued == 1
    # Again (a second scheduler, a restart): the ledger says it ran.
    assert fire(schedule, due).slots == []
    # Even with the ledger lost, the unique key per (task, tenant, slot) holds.
    db.query("DELETE FROM scheduler.fired RETURNING 1")
    again = fire(schedule, due)
    assert (again.enqueued, again.duplicates) == (0, 1)
    assert db.scalar("SELECT count(*) FROM dramatiq.queue") == 1


def test_catch_up_after_downtime_is_bounded(db: TestDB, broker: object) -> None:
    """digests.daily catches up on at most 7 missed days, oldest first, one job per day."""
    a, _ = setup_tenants(db)
    schedule = daily_schedules()["Asia/Jerusalem"]
    tz = ZoneInfo("Asia/Jerusalem")
    fire(schedule, datetime(2026, 11, 1, 7, tzinfo=tz))
    firing = fire(schedule, datetime(2026, 11, 22, 7, tzinfo=tz))
    assert len(firing.slots) == 7
    assert [s.day for s in firing.slots] == list(range(16, 23))
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE tenant_id = %s", (a,)) == 8
