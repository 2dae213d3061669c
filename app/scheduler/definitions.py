"""The schedules the definitions table asks for: one per (task, cron, time zone) in use."""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from app.scheduler import queries
from app.scheduler.cron import InvalidSchedule, Schedule

logger = logging.getLogger(__name__)


def load_schedules(conn: psycopg.Connection[Any]) -> tuple[list[Schedule], list[str]]:
    """Valid schedules, and one message per invalid one (skipped, not fatal)."""
    schedules: list[Schedule] = []
    errors: list[str] = []
    for task, cron, timezone in conn.execute(queries.DESIRED_SCHEDULES).fetchall():
        schedule = Schedule(task, cron, timezone)
        try:
            schedule.trigger()
        except InvalidSchedule as exc:
            errors.append(f"{task}: {exc}")
            continue
        schedules.append(schedule)
    return schedules, errors
