"""Send times: local times in a zone, the delay that makes a job due at one, and the next
occurrence of a recurring reminder.

A recurrence is a crontab expression read in the reminder's time zone (``0 9 * * 1``: every
Monday at 09:00 there, through daylight-saving changes), parsed by the scheduler's own cron
reader so both mean the same thing by the same text.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.scheduler.cron import InvalidSchedule, trigger_for

_DATABASE_CLOCK = text("SELECT clock_timestamp()")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as "
                         "'Europe/Paris')") from None


def resolve(send_at: datetime, timezone: str) -> datetime:
    """``send_at`` as an aware instant: a naive value is a local time in ``timezone``."""
    tz = zone(timezone)
    return send_at.replace(tzinfo=tz) if send_at.tzinfo is None else send_at


def check(recurrence: str, timezone: str) -> None:
    try:
        trigger_for(recurrence, timezone)
    except InvalidSchedule as exc:
        raise ValueError(f"recurrence: {exc}") from None


def next_occurrence(recurrence: str, timezone: str, after: datetime) -> datetime:
    """The first occurrence strictly after ``after``."""
    try:
        trigger = trigger_for(recurrence, timezone)
    except InvalidSchedule as exc:
        raise ValueError(f"recurrence: {exc}") from None
    found = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    if found is None:
        raise ValueError(f"recurrence {recurrence!r} has no occurrence after {after}")
    return found


def seconds_until(session: Session, when: datetime) -> float:
    """The delay that makes a job enqueued in this transaction due at ``when``, not before.

    A delayed job's eta is the database's clock at the enqueue statement plus its delay, so
    the delay is measured on the database's clock (this process's may be skewed); the
    enqueue runs just after this, so the job is due at ``when`` or a few milliseconds later,
    never early. One millisecond is added for the truncation to whole milliseconds.
    """
    now: datetime = session.execute(_DATABASE_CLOCK).scalar_one()
    return (when - now).total_seconds() + 0.001
