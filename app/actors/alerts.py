"""``sms.send`` (plan 002's ``sms-notifications`` queue): one alert SMS for an organization.

The payload carries its ``organizationId``, which must be the job's tenant (the job is
refused at enqueue without one). The text goes out through the same delivery path as
``notifications.send`` (template ``alert.sms``, recorded before the provider call).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.actors.notifications import failure_hook, run_delivery
from app.jobs import current_tenant, job
from app.jobs.hooks import FailedAttempt
from app.messaging.deliveries import Target
from app.messaging.errors import DeliveryFailed
from app.messaging.payloads import SmsNotificationJobData
from app.messaging.send import Request

TEMPLATE = "alert.sms"


def _target(attempt: FailedAttempt) -> Target | None:
    try:
        data = SmsNotificationJobData.model_validate(attempt.args[0] if attempt.args else None)
    except ValidationError:
        return None
    return Target("sms", data.phone_number, TEMPLATE)


@job(actor_name="sms.send", queue_name="sms-notifications",
     throws=(DeliveryFailed, ValidationError), on_failure=failure_hook(_target))
def send_sms(data: dict[str, Any]) -> dict[str, str]:
    payload = SmsNotificationJobData.model_validate(data)
    if payload.organization_id != current_tenant():
        raise DeliveryFailed("organizationId in the payload is not the job's tenant")
    params = {"message": payload.message, "alert_id": payload.alert_id}
    return run_delivery(Request("sms", payload.phone_number, TEMPLATE, params)).as_result()
