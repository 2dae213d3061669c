"""Actors for the operations tests, on the app's global broker (configured first).

Workers run them with ``dramatiq tests.ops.actors``; in-process tests import this module
and use the ``worker`` fixture, which consumes every queue of the global broker.
"""

from __future__ import annotations

import time
from typing import Any

from app.jobs.setup import configure

broker = configure()

from app.jobs import job  # noqa: E402

#: Keys whose first run has failed (per process: only in-process workers rely on it).
FAILED_ONCE: set[str] = set()


@job(actor_name="ops.sleep", queue_name="ops", tenant_free=True)
def sleep(seconds: float) -> None:
    time.sleep(seconds)  # the job's own work: a stand-in for I/O


@job(actor_name="ops.fail_first", queue_name="ops", tenant_free=True, max_attempts=1)
def fail_first(key: str) -> dict[str, Any]:
    """Dead-lettered on its first run (one attempt), succeeds when run again."""
    if key not in FAILED_ONCE:
        FAILED_ONCE.add(key)
        raise RuntimeError(f"first run of {key} fails on purpose")
    return {"key": key, "ok": True}
