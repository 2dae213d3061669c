"""shopnotes' queue, actors and recurring task: what ``JOBS_MODULES`` loads.

``JOBS_MODULES=examples.shopnotes.jobs dramatiq app.actors`` runs these with the product's
actors, and ``python -m app.scheduler`` with the same setting fires the summary. Importing
``app.jobs`` is all the set-up there is: the first ``@job`` configures the broker.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from app.jobs import current_session, current_tenant, declare_queue, job
from app.scheduler import recurring
from examples.shopnotes import notes
from examples.shopnotes.settings import ShopnotesSettings

logger = logging.getLogger(__name__)
SETTINGS = ShopnotesSettings.from_env()

# The queue first, with its whole policy: 3 attempts from 1 s, finished jobs kept a day
# (at most 1000), dead letters a week; at most 20 starts per second and 4 running per shop.
declare_queue("shopnotes", max_attempts=3, min_backoff=1_000, completed_max_age=86_400,
              completed_max_count=1000, failed_max_age=7 * 86_400,
              rate_limit=(20, 1.0), concurrency=4)


class NoteIn(BaseModel):
    """A note as application code enqueues it (validated again by the actor)."""

    order_ref: str = Field(min_length=1, max_length=100)
    body: str = Field(min_length=1, max_length=2000)


@job(actor_name="shopnotes.record", queue_name="shopnotes", throws=(ValueError,))
def record(note: dict[str, str]) -> dict[str, str]:
    """Store a note for the job's shop; it commits with the job's completion."""
    payload = NoteIn.model_validate(note)  # a bad payload is a dead letter at once
    tenant = current_tenant()
    assert tenant is not None  # a tenant job: the worker ran it in its shop's context
    note_id = notes.add_note(current_session(), tenant, payload.order_ref, payload.body)
    logger.info("event=note_recorded tenant=%s note=%s", tenant, note_id)
    return {"note_id": str(note_id)}


@job(actor_name="shopnotes.summarize", queue_name="shopnotes", throws=(ValueError,))
def summarize(slot: str) -> dict[str, int]:
    """The recurring summary of one shop for one slot (the scheduler passes ``slot``)."""
    when = datetime.fromisoformat(slot).astimezone(UTC)
    tenant = current_tenant()
    assert tenant is not None
    count = notes.summarize(current_session(), tenant, when, SETTINGS.summary_hours)
    return {"notes": count}


# Every active shop, at SHOPNOTES_SUMMARY_CRON in the shop's own time zone (timezone=None);
# after downtime, the last 2 missed evenings are caught up.
recurring(task="shopnotes.daily-summary", actor=summarize, cron=SETTINGS.summary_cron,
          timezone=None, misfire="catch_up", catch_up_max=2,
          description="Each shop's notes of the day, counted")
