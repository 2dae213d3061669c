"""``digests.daily`` / ``digests.weekly`` (fired per tenant by the scheduler) plan one
``digests.build`` per user; each build counts the tenant's activity, records the digest and
hands its email to ``notifications.send`` in the same transaction, once per user and period.
``email.digest`` (plan 002's ``email-digests`` queue) builds and sends one digest for the
period its payload names."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pydantic import ValidationError

from app.jobs import current_session, current_tenant, enqueue, job
from app.messaging.errors import DeliveryFailed
from app.messaging.notify import InvalidNotification, send_notice
from app.messaging.payloads import EmailDigestJobData
from app.services.digests import (
    DigestRequest,
    Period,
    build_digest,
    handed_over,
    not_sent,
    plan_digests,
    user_timezone,
)
from app.services.recurring import SLOT_UNIQUE_WINDOW, parse_slot

logger = logging.getLogger(__name__)


def _build_and_send(tenant: uuid.UUID, request: DigestRequest) -> dict[str, int]:
    session = current_session()
    digest = build_digest(session, tenant, request)
    if digest.notice is not None and digest.digest_id is not None:
        try:
            job_id = send_notice(session, digest.notice).message_id
        except InvalidNotification as exc:
            # The digest is kept (and marked failed): the user's address is unusable.
            not_sent(session, digest.digest_id)
            logger.warning("event=digest_not_sent digest=%s tenant=%s error=%r",
                           digest.digest_id, tenant, str(exc))
        else:
            handed_over(session, digest.digest_id, job_id)
    return digest.counts


@job(actor_name="digests.build", queue_name="scheduled", unique_window=SLOT_UNIQUE_WINDOW,
     throws=(ValidationError,))
def build(request: dict[str, Any]) -> dict[str, int]:
    tenant = current_tenant()
    assert tenant is not None
    return _build_and_send(tenant, DigestRequest.model_validate(request))


@job(actor_name="email.digest", queue_name="email-digests", unique_window=SLOT_UNIQUE_WINDOW,
     throws=(ValidationError, DeliveryFailed))
def email_digest(data: dict[str, Any]) -> dict[str, int]:
    payload = EmailDigestJobData.model_validate(data)
    tenant = current_tenant()
    if payload.organization_id != tenant:
        raise DeliveryFailed("organizationId in the payload is not the job's tenant")
    timezone = user_timezone(current_session(), payload.user_id)
    if timezone is None:
        raise DeliveryFailed("no active user with this userId in the organization")
    request = DigestRequest(user_id=payload.user_id, period=payload.period,
                            period_start=payload.start_date, period_end=payload.end_date,
                            timezone=timezone)
    return _build_and_send(tenant, request)


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
