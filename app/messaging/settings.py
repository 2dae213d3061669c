"""Messaging settings from the environment: default providers, timeouts, rate limit.

A tenant's own provider (``messaging_providers``) wins over these defaults; a channel with
neither fails its deliveries with a clear permanent error naming what to set.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from functools import lru_cache

from app.config import env_number


def _number(name: str, default: float) -> float:
    value = env_number(name, default)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {os.environ.get(name)!r}")
    return value


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if not raw:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1/0 (or true/false), got {raw!r}")


def _rate(name: str, default: tuple[int, float]) -> tuple[int, float]:
    """``N/SECONDS`` (``20/1``): at most N starts per key in that many seconds."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        count, seconds = raw.split("/")
        parsed = (int(count), float(seconds))
    except ValueError:
        raise ValueError(f"{name} must look like 20/1 (sends per seconds), got {raw!r}") \
            from None
    if parsed[0] < 1 or parsed[1] <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return parsed


@dataclass(frozen=True)
class MessagingSettings:
    smtp_host: str | None
    smtp_port: int
    smtp_starttls: bool
    smtp_username: str | None
    smtp_password: str | None
    email_from: str | None
    #: A PEM bundle to trust for STARTTLS (a private CA, a test server); else the system's.
    smtp_ca_file: str | None
    sms_url: str | None
    sms_account: str | None
    sms_token: str | None
    sms_from: str | None
    sms_reconcile: str
    whatsapp_url: str | None
    whatsapp_phone_id: str | None
    whatsapp_token: str | None
    whatsapp_reconcile: str
    connect_timeout: float
    timeout: float
    #: Per tenant and channel: notifications started at most N per S seconds.
    rate: tuple[int, float]
    #: A provider's Retry-After is honoured up to this many seconds.
    max_retry_after: float

    @classmethod
    def from_env(cls) -> MessagingSettings:
        env = os.environ.get
        return cls(
            smtp_host=env("MESSAGING_SMTP_HOST") or None,
            smtp_port=int(_number("MESSAGING_SMTP_PORT", 587)),
            smtp_starttls=_flag("MESSAGING_SMTP_STARTTLS", True),
            smtp_username=env("MESSAGING_SMTP_USERNAME") or None,
            smtp_password=env("MESSAGING_SMTP_PASSWORD") or None,
            email_from=env("MESSAGING_EMAIL_FROM") or None,
            smtp_ca_file=env("MESSAGING_SMTP_CA_FILE") or None,
            sms_url=env("MESSAGING_SMS_URL") or None,
            sms_account=env("MESSAGING_SMS_ACCOUNT") or None,
            sms_token=env("MESSAGING_SMS_TOKEN") or None,
            sms_from=env("MESSAGING_SMS_FROM") or None,
            sms_reconcile=env("MESSAGING_SMS_RECONCILE") or "none",
            whatsapp_url=env("MESSAGING_WHATSAPP_URL") or None,
            whatsapp_phone_id=env("MESSAGING_WHATSAPP_PHONE_ID") or None,
            whatsapp_token=env("MESSAGING_WHATSAPP_TOKEN") or None,
            whatsapp_reconcile=env("MESSAGING_WHATSAPP_RECONCILE") or "none",
            connect_timeout=_number("MESSAGING_CONNECT_TIMEOUT", 5.0),
            timeout=_number("MESSAGING_TIMEOUT", 10.0),
            rate=_rate("MESSAGING_RATE_LIMIT", (20, 1.0)),
            max_retry_after=_number("MESSAGING_MAX_RETRY_AFTER", 3600.0),
        )

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.smtp_ca_file)


@lru_cache(maxsize=1)
def get_messaging_settings() -> MessagingSettings:
    return MessagingSettings.from_env()
