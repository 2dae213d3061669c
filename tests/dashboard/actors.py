"""Actors of the dashboard tests (queue ``dash``), run by real workers.

``dramatiq tests.dashboard.actors`` loads them; the broker is configured first, as
``app.actors`` does. ``fail_once`` fails its first run (a file marks it), so a dead letter
retried from the dashboard then completes, whichever process runs it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from app.jobs.setup import configure

broker = configure()

import app.actors  # noqa: E402, F401  (the application's actors share the worker)
from app.jobs import job  # noqa: E402

QUEUE = "dash"


@job(actor_name="dash.work", queue_name=QUEUE)
def work(seconds: float, **_: Any) -> None:
    time.sleep(seconds)  # the job's own work: a stand-in for I/O


@job(actor_name="dash.fail_once", queue_name=QUEUE, max_attempts=1)
def fail_once(marker: str) -> dict[str, bool]:
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError("first run fails on purpose")
    return {"ok": True}


@job(actor_name="dash.limited", queue_name="dash_limited", rate_limit=(20, 1.0),
     concurrency=2)
def limited(seconds: float) -> None:
    time.sleep(seconds)
