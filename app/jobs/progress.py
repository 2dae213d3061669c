"""Progress reports from inside a running job, visible while it runs.

``report_progress(40, "3 of 8 pages")`` writes the job row at once in a short statement of
its own (autocommit, on the broker's pool), not in the job's tenant transaction, which only
commits when the job ends. The same statement notifies ``pgjobs.events``.
"""

from __future__ import annotations

from app.jobs.context import current_job
from app.jobs.events import record
from app.jobs.outcome import check_number, check_text
from app.store import outcomes

MAX_MESSAGE = 1000


def report_progress(percent: float, message: str | None = None) -> bool:
    """Record ``percent`` (0-100) and an optional message on the running job's row.

    Returns False when this attempt no longer holds the job (it was rescued meanwhile).
    Each call is one round trip: report on meaningful steps, not on every item of a loop.
    A value PostgreSQL cannot store (NaN, a NUL character) dead-letters the job
    (``PoisonValue``), as retrying would fail the same way.
    """
    ctx = current_job()
    if ctx is None:
        raise RuntimeError("report_progress() is only available inside a running job")
    check_number(percent, "progress")
    if not 0 <= percent <= 100:
        raise ValueError(f"progress must be between 0 and 100, got {percent!r}")
    value = round(percent)
    text = message[:MAX_MESSAGE] if message is not None else None
    if text is not None:
        check_text(text, "the progress message")
    job = ctx.message
    broker = ctx.broker
    with broker.jobs_pool.connection() as conn:
        held = outcomes.progress(conn, job.message_id, value, text, broker.worker_id)
    if held:
        record("progress", message_id=job.message_id, actor=job.actor_name,
               queue=job.queue_name, tenant=job.tenant_id, attempt=job.attempt,
               progress=value)
    return held

