"""``demo.*`` actors used by ``make demo``: a job that always fails, to show retries end as a
dead letter with its error kept."""

from __future__ import annotations

from app.jobs import job


class DemoFailure(RuntimeError):
    """Raised on purpose by ``demo.always_fails``."""


@job(actor_name="demo.always_fails", queue_name="demo", max_attempts=3, min_backoff=200)
def always_fails(reason: str) -> None:
    raise DemoFailure(f"failing on purpose: {reason}")
