"""``digests.daily`` / ``digests.weekly`` (fired per tenant by the scheduler) plan one
``digests.build`` per user; each build counts the tenant's activity and records the digest."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.jobs import current_session, current_tenant, enqueue, job
from app.services.digests import DigestRequest, Period, build_digest, plan_digests
from app.services.recurring import SLOT_UNIQUE_WINDOW, parse_slot


@job(actor_name="digests.build", queue_name="scheduled", unique_window=SLOT_UNIQUE_WINDOW,
     throws=(ValidationError,))
def build(request: dict[str, Any]) -> dict[str, int]:
    tenant = current_tenant()
    assert tenant is not None
    return build_digest(current_session(), tenant, DigestRequest.model_validate(request))


def _plan(period: Period, slot: str) -> dict[str, int]:
    session = current_session()
    requests = plan_digests(session, period, parse_slot(slot))
    for request in requests:
        key = f"digest:{request.user_id}:{period}:{request.period_start.isoformat()}"
        enqueue(session, build, request.model_dump(mode="json"), unique_key=key)
    return {"users": len(requests)}


@job(actor_name="digests.daily", queue_name="scheduled", unique_window=SLOT_UNIQUE_WINDOW,
     throws=(ValueError,))
def daily(slot: str) -> dict[str, int]:
    return _plan("daily", slot)


@job(actor_name="digests.weekly", queue_name="scheduled", unique_window=SLOT_UNIQUE_WINDOW,
     throws=(ValueError,))
def weekly(slot: str) -> dict[str, int]:
    return _plan("weekly", slot)
