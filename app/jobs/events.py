"""Lifecycle events: one structured log line and one metric per event, and the LISTEN channel.

Every event of a job goes through :func:`record`, so its log line and its counter can never
disagree, and a log line always carries the same fields (job id, actor, queue, tenant,
attempt, duration, error). The events middleware, the rescuer and progress reports call it.

Application code can subscribe with :func:`listen`: the job store's statements notify
``pgjobs.events`` in the transaction that changes the jobs, with ids only (LISTEN is not
under Row-Level Security), and the subscriber reads the rows through RLS if it needs more.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from psycopg import sql

from app.db.connections import connect, session_url
from app.jobs import metrics
from app.store.channels import EVENTS, EVENTS_CHANNEL, Event, parse_events

logger = logging.getLogger("pgjobs.events")

__all__ = ["EVENTS", "Event", "listen", "record", "set_happy_path_level"]

#: Every job goes through these: logged at DEBUG unless JOBS_EVENTS_LOG_LEVEL says otherwise
#: (two INFO lines per job cost more CPU than running a no-op job; see the README figures).
HAPPY_PATH = ("enqueued", "active", "progress", "completed")

#: What needs a look is WARNING; a dead letter is an ERROR.
LEVELS = {
    "enqueued": logging.DEBUG, "active": logging.DEBUG, "progress": logging.DEBUG,
    "completed": logging.DEBUG, "failed": logging.WARNING, "retrying": logging.WARNING,
    "dead": logging.ERROR, "stalled": logging.WARNING, "rescued": logging.WARNING,
    "cancelled": logging.INFO,
}


def set_happy_path_level(level: str | int) -> None:
    """Log enqueued/active/progress/completed at ``level`` (e.g. "INFO") in this process."""
    value = logging.getLevelName(level) if isinstance(level, str) else level
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r} (JOBS_EVENTS_LOG_LEVEL)")
    for event in HAPPY_PATH:
        LEVELS[event] = value


def record(
    event: str,
    *,
    message_id: Any,
    actor: str | None,
    queue: str,
    tenant: Any = None,
    attempt: int | None = None,
    duration: float | None = None,
    error: str | None = None,
    **extra: Any,
) -> None:
    """Count ``event`` and log it as one ``key=value`` line (``error`` last, quoted)."""
    queue = queue.removesuffix(".DQ")
    metrics.count(event, queue, actor)
    level = LEVELS[event]
    if not logger.isEnabledFor(level):
        return
    parts = [f"event={event} message_id={message_id} actor={actor} queue={queue} "
             f"tenant={tenant}"]
    if attempt is not None:
        parts.append(f"attempt={attempt}")
    if duration is not None:
        parts.append(f"duration={duration:.6f}")
    parts.extend(f"{key}={value}" for key, value in extra.items())
    if error is not None:
        parts.append(f"error={error!r}")
    logger.log(level, " ".join(parts))


def listen(url: str, *, timeout: float | None = None) -> Iterator[Event]:
    """Yield events as they are committed, for ``timeout`` seconds (None: for ever).

    Opens its own connection (LISTEN needs a session of its own: a direct URL, not a
    transaction pooler). Any role may listen: the payloads carry ids only. Given one of the
    configured role URLs that goes through a transaction pooler, it listens on that role's
    direct URL (``*_DIRECT_URL``); without one it raises DirectUrlRequired at once.
    """
    return _listen(session_url(url, "app.jobs.events.listen()"), timeout)


def _listen(url: str, timeout: float | None) -> Iterator[Event]:
    with connect(url, name="pgjobs-events") as conn:
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVENTS_CHANNEL)))
        for notify in conn.notifies(timeout=timeout):
            yield from parse_events(notify.payload)
