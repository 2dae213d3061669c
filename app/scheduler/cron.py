"""Cron expressions to APScheduler triggers, schedule ids, and which missed slots to run.

Crontab weekdays count from Sunday (0 or 7); APScheduler 3 counts from Monday, a known trap
(its issue 286). Numeric weekdays are translated to names, so ``0 7 * * 1`` means Monday
as every crontab user expects. Six fields put seconds first (tests use per-second crons).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\*|\d+)(?:-(\d+))?(?:/(\d+))?$")


class InvalidSchedule(ValueError):
    """A definition's cron expression or time zone cannot be used; the message says why."""


def _weekdays(field: str) -> str:
    """Crontab weekday numbers (0/7 = Sunday) as APScheduler weekday names."""
    if field in ("*", "?") or not any(ch.isdigit() for ch in field):
        return field
    names: list[str] = []
    for part in field.split(","):
        match = _RANGE.match(part)
        if match is None:
            raise InvalidSchedule(f"weekday field {field!r}: cannot read {part!r}")
        start, end, step = match.groups()
        first, last = (0, 6) if start == "*" else (int(start), int(end or start))
        if start != "*" and end is None and step is not None:
            last = 6  # crontab's "5/2": from 5 to the end of the week
        if not 0 <= first <= 7 or not 0 <= last <= 7 or first > last:
            raise InvalidSchedule(f"weekday field {field!r}: {part!r} is out of 0-7")
        names.extend(WEEKDAYS[day] for day in range(first, last + 1, int(step or 1)))
    return ",".join(dict.fromkeys(names))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"unknown time zone {name!r}") from None


def trigger_for(cron: str, timezone: str) -> CronTrigger:
    """A CronTrigger for a 5-field crontab or 6-field (seconds first) expression."""
    fields = cron.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise InvalidSchedule(f"cron {cron!r} needs 5 fields (or 6 with seconds first)")
    second, minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            second=second, minute=minute, hour=hour, day=day, month=month,
            day_of_week=_weekdays(weekday), timezone=zone(timezone),
        )
    except InvalidSchedule:
        raise
    except ValueError as exc:
        raise InvalidSchedule(f"cron {cron!r}: {exc}") from None


@dataclass(frozen=True)
class Schedule:
    """One APScheduler job: a task on one (cron, time zone); it fans out to its tenants."""

    task: str
    cron: str
    timezone: str

    @property
    def job_id(self) -> str:
        # The id carries the schedule itself: an edited cron or time zone is a new job, so
        # the old one's pending fire time can never fire on the new schedule.
        return f"{self.task}|{self.cron}|{self.timezone}"

    @classmethod
    def from_job_id(cls, job_id: str) -> Schedule:
        task, cron, timezone = job_id.split("|", 2)
        return cls(task, cron, timezone)

    def trigger(self) -> CronTrigger:
        return trigger_for(self.cron, self.timezone)


@dataclass(frozen=True)
class MisfirePolicy:
    policy: str = "run_once"
    catch_up_max: int = 1
    grace_seconds: float = 60.0


#: Walking a per-second cron across a long outage stays bounded.
MAX_WALK = 100_000


def slots_to_run(
    trigger: CronTrigger, last: datetime | None, due: datetime, now: datetime,
    misfire: MisfirePolicy,
) -> list[datetime]:
    """The slots to fire now: ``due`` (the latest due slot) and missed ones since ``last``.

    Missed slots are those after ``last`` (the last slot fired, from the ledger) and before
    ``due``. ``skip`` drops them and drops ``due`` too when it is later than the grace;
    ``run_once`` fires ``due`` alone (coalescing); ``catch_up`` fires up to
    ``catch_up_max`` of the latest slots, oldest first.
    """
    if last is not None and due <= last:
        return []
    if misfire.policy == "skip":
        late = (now - due).total_seconds()
        return [due] if late <= misfire.grace_seconds else []
    if misfire.policy == "run_once" or last is None or misfire.catch_up_max <= 1:
        return [due]
    keep: deque[datetime] = deque(maxlen=misfire.catch_up_max)
    slot = trigger.get_next_fire_time(last, last + timedelta(microseconds=1))
    for _ in range(MAX_WALK):
        if slot is None or slot >= due:
            break
        keep.append(slot)
        slot = trigger.get_next_fire_time(slot, slot + timedelta(microseconds=1))
    keep.append(due)
    return list(keep)
