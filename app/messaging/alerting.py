"""Plan 002's queue service: type-safe add-job for SMS alerts and email digests.

Every job carries its organization (``organizationId``), and the organization must be the
tenant of the session that enqueues it: a job for no organization, or for another one, is
refused before anything is written (``EnqueueRefused``).

    with tenant_session(org_id) as session:
        add_sms_notification(session, {"organizationId": str(org_id),
                                       "phoneNumber": "+15551234567", "message": "CPU > 90%"})
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from app.actors import alerts, digests
from app.db.tenant import TENANT_KEY
from app.jobs import EnqueueRefused, EnqueueResult, enqueue
from app.messaging.errors import validation_summary
from app.messaging.payloads import EmailDigestJobData, SmsNotificationJobData

M = TypeVar("M", bound=BaseModel)


def _organization(session: Session, organization_id: uuid.UUID, what: str) -> None:
    tenant = session.info.get(TENANT_KEY)
    if tenant is None:
        raise EnqueueRefused(f"{what} needs an organization: enqueue it inside "
                             "tenant_session(organization_id)")
    if organization_id != tenant:
        raise EnqueueRefused(f"{what}: organizationId is not this session's organization")


def _validated(model: type[M], data: M | dict[str, Any], what: str) -> M:
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EnqueueRefused(f"{what}: {validation_summary(exc)}") from None


def add_sms_notification(
    session: Session, data: SmsNotificationJobData | dict[str, Any], *,
    delay: float | None = None,
) -> EnqueueResult:
    payload = _validated(SmsNotificationJobData, data, "sms notification")
    _organization(session, payload.organization_id, "sms notification")
    # One SMS per alert and number; the number is hashed (keys show up in job listings).
    number = hashlib.sha256(payload.phone_number.encode()).hexdigest()[:16]
    key = f"alert-sms:{payload.alert_id}:{number}" if payload.alert_id else None
    return enqueue(session, alerts.send_sms, payload.model_dump(mode="json", by_alias=True),
                   delay=delay, unique_key=key)


def add_email_digest(
    session: Session, data: EmailDigestJobData | dict[str, Any],
) -> EnqueueResult:
    payload = _validated(EmailDigestJobData, data, "email digest")
    _organization(session, payload.organization_id, "email digest")
    key = (f"email-digest:{payload.user_id}:{payload.period}:"
           f"{payload.start_date.isoformat()}")
    return enqueue(session, digests.email_digest,
                   payload.model_dump(mode="json", by_alias=True), unique_key=key)
