"""Cron expressions mean what crontab users expect; misfire policies pick the right slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.scheduler.cron import InvalidSchedule, MisfirePolicy, slots_to_run, trigger_for

MON = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday


def next_fire(cron: str, after: datetime, tz: str = "UTC") -> datetime:
    fire = trigger_for(cron, tz).get_next_fire_time(None, after)
    assert fire is not None
    return fire


def test_crontab_weekdays_count_from_sunday() -> None:
    assert next_fire("0 7 * * 1", MON - timedelta(days=3)).weekday() == 0  # Monday
    assert next_fire("0 7 * * 0", MON).weekday() == 6  # Sunday
    assert next_fire("0 7 * * 7", MON).weekday() == 6
    assert {next_fire("0 7 * * 1-5", MON + timedelta(days=d)).weekday() for d in range(7)} \
        == {0, 1, 2, 3, 4}


def test_six_fields_have_seconds_first_and_time_zones_apply() -> None:
    assert next_fire("*/2 * * * * *", MON + timedelta(seconds=1)).second == 2
    local = next_fire("0 7 * * *", MON, "Asia/Jerusalem")
    assert local.astimezone(UTC).hour == 5


@pytest.mark.parametrize("cron, tz, message", [
    ("0 7 * *", "UTC", "needs 5 fields"),
    ("0 25 * * *", "UTC", "cron '0 25 \\* \\* \\*'"),
    ("0 7 * * *", "Mars/Olympus", "unknown time zone"),
])
def test_bad_schedules_are_named(cron: str, tz: str, message: str) -> None:
    with pytest.raises(InvalidSchedule, match=message):
        trigger_for(cron, tz)


def test_misfire_policies() -> None:
    trigger = trigger_for("0 * * * *", "UTC")  # hourly
    last, due = MON, MON + timedelta(hours=5)
    now = due + timedelta(seconds=30)
    hours = [MON + timedelta(hours=h) for h in range(1, 6)]
    assert slots_to_run(trigger, last, due, now, MisfirePolicy("run_once")) == [due]
    assert slots_to_run(trigger, last, due, now, MisfirePolicy("catch_up", 3)) == hours[-3:]
    assert slots_to_run(trigger, last, due, now, MisfirePolicy("catch_up", 10)) == hours
    assert slots_to_run(trigger, last, due, now, MisfirePolicy("skip", 1, 60)) == [due]
    late = due + timedelta(minutes=5)
    assert slots_to_run(trigger, last, due, late, MisfirePolicy("skip", 1, 60)) == []
    assert slots_to_run(trigger, due, due, now, MisfirePolicy("catch_up", 3)) == []
