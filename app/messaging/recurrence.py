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

_TRANSACTION_START = text("SELECT now()")


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
    """The delay that makes a job enqueued in this transaction due exactly at ``when``.

    A job's eta is the transaction's start (``now()``) plus its delay, so the delay is
    measured from there, not from this process's clock (which is later, by however long the
    transaction has been open): a message is never due before its time. One millisecond is
    added for the truncation to whole milliseconds on the way.
    """
    started: datetime = session.execute(_TRANSACTION_START).scalar_one()
    return (when - started).total_seconds() + 0.001
