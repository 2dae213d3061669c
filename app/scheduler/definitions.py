"""The schedules the definitions table asks for: one per (task, cron, time zone) in use.

A definition that cannot be scheduled is refused, not fatal: its task is skipped with one
message (``"<task>: <why>"``) and every other task keeps firing. Refused are a cron or time
zone that does not parse and, given the actors this process registered, an actor no module
declared (a row added by hand, a module missing from ``JOBS_MODULES``, a renamed actor).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

import psycopg

from app.scheduler import queries
from app.scheduler.cron import InvalidSchedule, Schedule
from app.scheduler.declarations import unknown_actor_message

logger = logging.getLogger(__name__)


def problem(task: str, why: str) -> str:
    """One refusal as reported in logs, ``scheduler.health.errors`` and ``pgjobs``."""
    return f"{task}: {why}"


def task_of(message: str) -> str:
    """The task a refusal is about (``problem``'s inverse; task names have no ': ')."""
    return message.split(": ", 1)[0]


def refused_actors(
    conn: psycopg.Connection[Any], known_actors: Collection[str]
) -> dict[str, str]:
    """Tasks that may fire but name an actor not in ``known_actors``, with why."""
    return {task: unknown_actor_message(actor_name, known_actors)
            for task, actor_name in conn.execute(queries.SCHEDULED_ACTORS).fetchall()
            if actor_name not in known_actors}


def load_schedules(
    conn: psycopg.Connection[Any], known_actors: Collection[str] | None = None
) -> tuple[list[Schedule], list[str]]:
    """Valid schedules, and one message per refused one (skipped, not fatal).

    ``known_actors``: the actor names registered in this process; None skips that check.
    """
    schedules: list[Schedule] = []
    refused = {} if known_actors is None else refused_actors(conn, known_actors)
    errors = [problem(task, why) for task, why in refused.items()]
    for task, cron, timezone in conn.execute(queries.DESIRED_SCHEDULES).fetchall():
        if task in refused:
            continue
        schedule = Schedule(task, cron, timezone)
        try:
            schedule.trigger()
        except InvalidSchedule as exc:
            errors.append(problem(task, str(exc)))
            continue
        schedules.append(schedule)
    return schedules, errors
