"""Job payloads from the plans, validated with pydantic (field names or the plans' camelCase).

000 ``NotificationJobData``, 001 ``ScheduledMessageJobData`` / ``ReminderJobData``, 002
``SmsNotificationJobData`` / ``EmailDigestJobData`` (every one carries its organization,
which must be the job's tenant).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.providers.outbound import Channel

#: E.164: a plus, a non-zero digit, at most 15 digits in all.
PHONE = r"^\+[1-9][0-9]{6,14}$"
#: ``digest:<uuid>`` or ``photo_week:<YYYY-MM-DD>``.
REFERENCE = r"^(digest:[0-9a-f-]{36}|photo_week:[0-9]{4}-[0-9]{2}-[0-9]{2})$"
#: One address, no display name (local domains such as ``@localhost`` allowed).
EMAIL = r"^[^@\s<>,;]+@[^@\s<>,;]+$"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def check_recipient(channel: str, recipient: str) -> None:
    """A ValueError naming the channel's expected format (never echoing the recipient)."""
    pattern, what = (EMAIL, "an email address") if channel == "email" else (
        PHONE, "an E.164 phone number such as +15551234567")
    if not re.fullmatch(pattern, recipient):
        raise ValueError(f"recipient must be {what} for channel {channel!r}")


class NotificationJobData(_Payload):
    channel: Channel
    recipient: str = Field(alias="recipientId", min_length=3, max_length=320)
    template_id: str = Field(alias="templateId", min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)
    #: Optional, as in plan 000; when given it must be the job's tenant.
    tenant_id: uuid.UUID | None = Field(default=None, alias="tenantId")
    #: What the message is about, marked delivered when it is sent (``references.py``).
    reference: str | None = Field(default=None, pattern=REFERENCE)

    @model_validator(mode="after")
    def _recipient(self) -> NotificationJobData:
        check_recipient(self.channel, self.recipient)
        return self


class ScheduledMessageJobData(_Payload):
    scheduled_message_id: uuid.UUID = Field(alias="scheduledMessageId")


class ReminderJobData(_Payload):
    reminder_id: uuid.UUID = Field(alias="reminderId")


class SmsNotificationJobData(_Payload):
    organization_id: uuid.UUID = Field(alias="organizationId")
    phone_number: str = Field(alias="phoneNumber", pattern=PHONE)
    message: str = Field(min_length=1, max_length=1600)
    alert_id: str | None = Field(default=None, alias="alertId", max_length=200)


class EmailDigestJobData(_Payload):
    organization_id: uuid.UUID = Field(alias="organizationId")
    user_id: uuid.UUID = Field(alias="userId")
    period: Literal["daily", "weekly"]
    start_date: datetime = Field(alias="startDate")
    end_date: datetime = Field(alias="endDate")

    @model_validator(mode="after")
    def _bounds(self) -> EmailDigestJobData:
        if self.start_date.tzinfo is None or self.end_date.tzinfo is None:
            raise ValueError("startDate and endDate must carry a UTC offset")
        if self.end_date <= self.start_date:
            raise ValueError("endDate must be after startDate")
        return self
