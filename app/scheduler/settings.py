"""Scheduler timings from the environment, so tests can run a scheduler in fast motion."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class SchedulerSettings:
    #: How often the leader re-reads the definitions (edits apply within this) and heartbeats.
    sync_seconds: float
    #: How often a standby tries the leader lock (takeover time is about this plus startup).
    lock_retry_seconds: float
    #: Threads firing slots (one per schedule at a time).
    fire_threads: int
    #: An instance whose heartbeat is older than this no longer counts in health.
    stale_seconds: float
    #: The advisory lock's name: one leader per (database, key). Giving two processes
    #: different keys makes two leaders on purpose (the split-brain drill in the tests).
    lock_key: str

    @classmethod
    def from_env(cls) -> SchedulerSettings:
        sync = _seconds("SCHEDULER_SYNC_SECONDS", 1.0)
        return cls(
            sync_seconds=sync,
            lock_retry_seconds=_seconds("SCHEDULER_LOCK_RETRY_SECONDS", 1.0),
            fire_threads=int(_seconds("SCHEDULER_FIRE_THREADS", 4)),
            stale_seconds=_seconds("SCHEDULER_STALE_SECONDS", max(10.0, 5 * sync)),
            lock_key=os.environ.get("SCHEDULER_LOCK_KEY") or "pgjobs.scheduler",
        )
