"""Token refresh: find integrations whose access token expires soon, refresh each one.

The refresh itself is a provider call (OAuth refresh grant for Google, WhatsApp...), which
comes with the domain issue: a provider registers its refresher here. Until then, an
expiring integration is marked ``refresh_due`` and its refresh job dead-letters with
``NoTokenRefresher``, so operators see it and can replay it once the refresher exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

_MARK_EXPIRING = text("""
    UPDATE integrations
    SET refresh_status = 'refresh_due',
        refresh_requested_at = CASE WHEN refresh_status = 'refresh_due'
                                    THEN refresh_requested_at ELSE now() END
    WHERE tenant_id = :tenant AND access_token_expires_at IS NOT NULL
      AND access_token_expires_at < :horizon AND refresh_status <> 'failed'
    RETURNING id, provider, access_token_expires_at""")
_LOCK = text("""
    SELECT provider, account, access_token_expires_at FROM integrations
    WHERE id = :id FOR UPDATE""")
_REFRESHED = text("""
    UPDATE integrations
    SET access_token_expires_at = :expires, refresh_status = 'ok', last_refreshed_at = now(),
        last_error = NULL
    WHERE id = :id""")


class NoTokenRefresher(LookupError):
    """No refresher is registered for the provider yet: dead-lettered for a later replay."""


@dataclass(frozen=True)
class Integration:
    id: uuid.UUID
    provider: str
    account: str
    expires_at: datetime | None


#: A refresher calls the provider and returns the new token's expiry.
Refresher = Callable[[Integration], datetime]
REFRESHERS: dict[str, Refresher] = {}


def register_refresher(provider: str, refresher: Refresher) -> None:
    REFRESHERS[provider] = refresher


@dataclass(frozen=True)
class Expiring:
    id: uuid.UUID
    provider: str
    expires_at: datetime


def mark_expiring(
    session: Session, tenant: uuid.UUID, now: datetime, window_seconds: float
) -> list[Expiring]:
    """Integrations expiring before ``now + window``, marked ``refresh_due``."""
    rows = session.execute(_MARK_EXPIRING, {
        "tenant": tenant, "horizon": now + timedelta(seconds=window_seconds),
    })
    return [Expiring(*row) for row in rows]


def refresh_integration(session: Session, integration_id: uuid.UUID) -> datetime | None:
    """Refresh one integration's token; None when it vanished (deleted meanwhile)."""
    row = session.execute(_LOCK, {"id": integration_id}).one_or_none()
    if row is None:
        return None
    integration = Integration(integration_id, *row)
    refresher = REFRESHERS.get(integration.provider)
    if refresher is None:
        raise NoTokenRefresher(
            f"no token refresher for provider {integration.provider!r} yet; the integration "
            "stays refresh_due (provider calls come with the provider integration)"
        )
    expires = refresher(integration)
    session.execute(_REFRESHED, {"id": integration_id, "expires": expires})
    return expires
