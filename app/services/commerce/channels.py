"""Store channels and carrier accounts of a tenant, their sealed credentials, their adapters.

Added by application code in the tenant's session (``app_user``); read by jobs in theirs.
Under RLS a channel of another tenant does not exist: ``ChannelNotFound``, never its data.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from psycopg.rows import class_row
from sqlalchemy.orm import Session

from app.db.engine import raw_connection
from app.providers.carrier import CarrierClient
from app.providers.shopify import ShopifyClient
from app.providers.woocommerce import WooCommerceClient
from app.sealing import seal, unseal
from app.services.commerce import queries
from app.services.commerce.settings import CommerceSettings

#: Credential fields each platform needs.
CREDENTIALS = {
    "shopify": ("access_token",),
    "woocommerce": ("consumer_key", "consumer_secret"),
    "carrier": ("api_key",),
}


class ChannelError(ValueError):
    """A channel cannot be added as asked (the message names the field)."""


class ChannelNotFound(LookupError):
    """No such channel for this tenant (or it is not the kind the job needs)."""


@dataclass(frozen=True)
class Channel:
    id: uuid.UUID
    tenant_id: uuid.UUID
    platform: str
    name: str
    base_url: str
    credentials: bytes = field(repr=False)
    active: bool

    def secrets(self) -> dict[str, str]:
        value: dict[str, str] = json.loads(unseal(self.credentials))
        return value


def _check(platform: str, name: str, base_url: str, credentials: dict[str, Any]) -> None:
    if platform not in CREDENTIALS:
        raise ChannelError(f"platform must be one of {', '.join(CREDENTIALS)}, got {platform!r}")
    if not name or not name.strip():
        raise ChannelError("channel name must not be empty")
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ChannelError(f"base_url must be an http(s) URL, got {base_url!r}")
    missing = [k for k in CREDENTIALS[platform] if not isinstance(credentials.get(k), str)
               or not credentials[k]]
    if missing:
        raise ChannelError(f"{platform} credentials need {', '.join(missing)}")
    unknown = sorted(set(credentials) - set(CREDENTIALS[platform]))
    if unknown:
        raise ChannelError(f"{platform} credentials take no {', '.join(unknown)}")


def add_channel(
    session: Session, tenant_id: uuid.UUID, *, platform: str, name: str, base_url: str,
    credentials: dict[str, Any],
) -> uuid.UUID:
    """Record a channel of the session's tenant; credentials are sealed before storing."""
    _check(platform, name, base_url, credentials)
    row = raw_connection(session).execute(queries.ADD_CHANNEL, {
        "tenant": tenant_id, "platform": platform, "name": name.strip(),
        "base_url": base_url.rstrip("/"), "credentials": seal(json.dumps(credentials)),
    }).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def get_channel(session: Session, channel_id: uuid.UUID, *, platform: str | None = None,
                ) -> Channel:
    with raw_connection(session).cursor(row_factory=class_row(Channel)) as cur:
        channel = cur.execute(queries.GET_CHANNEL, {"id": channel_id}).fetchone()
    if channel is None:
        raise ChannelNotFound(f"no channel {channel_id} for this tenant")
    if platform is not None and channel.platform != platform:
        raise ChannelNotFound(f"channel {channel_id} is a {channel.platform} channel, "
                              f"not {platform}")
    if not channel.active:
        raise ChannelNotFound(f"channel {channel_id} is inactive")
    return channel


def active_channels(session: Session, platform: str) -> list[Channel]:
    with raw_connection(session).cursor(row_factory=class_row(Channel)) as cur:
        return cur.execute(queries.CHANNELS_OF, {"platform": platform}).fetchall()


def store_client(channel: Channel, settings: CommerceSettings
                 ) -> ShopifyClient | WooCommerceClient:
    """The adapter that pages through ``channel``'s store."""
    secrets = channel.secrets()
    if channel.platform == "shopify":
        return ShopifyClient(channel.base_url, secrets["access_token"], settings.timeouts)
    if channel.platform == "woocommerce":
        return WooCommerceClient(channel.base_url, secrets["consumer_key"],
                                 secrets["consumer_secret"], settings.timeouts)
    raise ChannelNotFound(f"channel {channel.id} is a {channel.platform} channel, not a store")


def carrier_client(channel: Channel, settings: CommerceSettings) -> CarrierClient:
    if channel.platform != "carrier":
        raise ChannelNotFound(f"channel {channel.id} is a {channel.platform} channel, "
                              "not a carrier")
    return CarrierClient(channel.base_url, channel.secrets()["api_key"], settings.timeouts)
