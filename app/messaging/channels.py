"""Which provider sends a tenant's messages on each channel, and with which credentials.

A tenant's row in ``messaging_providers`` (settings as JSON, the secret sealed with
``app.sealing``) wins; otherwise the environment's default for the channel
(``MESSAGING_SMTP_HOST``, ``MESSAGING_SMS_URL``, ``MESSAGING_WHATSAPP_URL``...). Rows are
read under RLS, so a tenant can only ever be served by its own settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from app.messaging import queries
from app.messaging.errors import validation_summary
from app.messaging.settings import MessagingSettings
from app.providers.outbound import CHANNELS, OutboundProvider
from app.providers.outbound_http import Timeouts
from app.providers.smtp import SmtpEmail, SmtpSettings
from app.providers.twilio import TwilioSettings, TwilioSms
from app.providers.whatsapp import WhatsAppCloud, WhatsAppSettings
from app.sealing import seal, unseal

#: The adapters each channel can use, with the model that checks their settings.
KINDS: dict[str, dict[str, type[BaseModel]]] = {
    "email": {"smtp": SmtpSettings},
    "sms": {"twilio": TwilioSettings},
    "whatsapp": {"whatsapp_cloud": WhatsAppSettings},
}


class ProviderNotConfigured(ValueError):
    """No usable provider for a channel: a permanent error naming what to configure."""


@dataclass(frozen=True)
class ProviderInfo:
    """A tenant's provider as listed to the tenant: the secret is only said to exist."""

    channel: str
    provider: str
    settings: dict[str, Any]
    has_secret: bool
    updated_at: datetime


def _checked(channel: str, provider: str, settings: dict[str, Any]) -> BaseModel:
    if channel not in CHANNELS:
        raise ProviderNotConfigured(f"channel must be one of {', '.join(CHANNELS)}, "
                                    f"got {channel!r}")
    model = KINDS[channel].get(provider)
    if model is None:
        raise ProviderNotConfigured(f"channel {channel!r} has no provider {provider!r}; "
                                    f"use one of {', '.join(KINDS[channel])}")
    try:
        return model.model_validate(settings)
    except ValidationError as exc:
        raise ProviderNotConfigured(f"{provider} settings for {channel}: "
                                    f"{validation_summary(exc)}") \
            from None


def set_provider(
    session: Session, channel: str, provider: str, settings: dict[str, Any],
    secret: str | None = None,
) -> None:
    """Use ``provider`` for the tenant's ``channel``; ``secret`` (password, token) is sealed."""
    checked = _checked(channel, provider, settings)
    session.execute(queries.SET_PROVIDER, {
        "channel": channel, "provider": provider,
        "settings": json.dumps(checked.model_dump(mode="json", exclude_unset=True)),
        "secret": seal(secret) if secret else None,
    })


def remove_provider(session: Session, channel: str) -> bool:
    result = session.execute(queries.DELETE_PROVIDER, {"channel": channel})
    return bool(result.rowcount)  # type: ignore[attr-defined]


def list_providers(session: Session) -> list[ProviderInfo]:
    return [ProviderInfo(**row) for row in session.execute(queries.LIST_PROVIDERS).mappings()]


def build(
    channel: str, provider: str, settings: dict[str, Any], secret: str | None,
    config: MessagingSettings,
) -> OutboundProvider:
    checked = _checked(channel, provider, settings)
    timeouts = Timeouts(connect=config.connect_timeout, read=config.timeout)
    if isinstance(checked, SmtpSettings):
        return SmtpEmail(checked, secret, tls_context=config.tls_context())
    if isinstance(checked, TwilioSettings):
        return TwilioSms(checked, secret or "", timeouts)
    assert isinstance(checked, WhatsAppSettings)
    return WhatsAppCloud(checked, secret or "", timeouts)


def provider_for(session: Session, channel: str, config: MessagingSettings) -> OutboundProvider:
    """The tenant's provider for ``channel``, else the environment's default."""
    row = session.execute(queries.FIND_PROVIDER, {"channel": channel}).mappings().one_or_none()
    if row is not None:
        secret = unseal(row["secret"]) if row["secret"] is not None else None
        return build(channel, row["provider"], dict(row["settings"]), secret, config)
    default = default_provider(channel, config)
    if default is None:
        raise ProviderNotConfigured(
            f"no provider for channel {channel!r}: add one with set_provider() or set "
            f"{_ENV_HINT[channel]}")
    return default


_ENV_HINT = {"email": "MESSAGING_SMTP_HOST and MESSAGING_EMAIL_FROM",
             "sms": "MESSAGING_SMS_URL, MESSAGING_SMS_ACCOUNT and MESSAGING_SMS_FROM",
             "whatsapp": "MESSAGING_WHATSAPP_URL and MESSAGING_WHATSAPP_PHONE_ID"}


def default_provider(channel: str, c: MessagingSettings) -> OutboundProvider | None:
    if channel == "email" and c.smtp_host and c.email_from:
        smtp = {"host": c.smtp_host, "port": c.smtp_port, "starttls": c.smtp_starttls,
                "username": c.smtp_username, "from_address": c.email_from,
                "timeout": c.timeout}
        return build("email", "smtp", smtp, c.smtp_password, c)
    if channel == "sms" and c.sms_url and c.sms_account and c.sms_from:
        sms = {"base_url": c.sms_url, "account_sid": c.sms_account,
               "from_number": c.sms_from, "reconcile": c.sms_reconcile}
        return build("sms", "twilio", sms, c.sms_token, c)
    if channel == "whatsapp" and c.whatsapp_url and c.whatsapp_phone_id:
        wa = {"base_url": c.whatsapp_url, "phone_number_id": c.whatsapp_phone_id,
              "reconcile": c.whatsapp_reconcile}
        return build("whatsapp", "whatsapp_cloud", wa, c.whatsapp_token, c)
    return None
