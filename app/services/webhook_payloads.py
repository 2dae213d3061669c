"""What each webhook source sends: its payload model, its event id and its event type.

Shared by the intake (a malformed delivery is refused at the door with 400, naming what is
wrong) and by processing (the stored payload is validated again before it is used, so a row
edited by hand or stored by an older version fails with a clear error, not deep in a
handler). Models allow extra fields: senders add fields over time, and refusing them would
drop real events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: Sources whose tenant is named by an endpoint token and whose body is signed with the
#: generic HMAC header.
GENERIC_SOURCES = ("voicenter", "greeninvoice", "icount", "whatsapp", "google", "carrier", "test")
SOURCES = (*GENERIC_SOURCES, "shopify", "woocommerce", "slack")


class PayloadError(ValueError):
    """A delivery that cannot be identified (no event id, no topic): the message says why."""


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class GenericEvent(_Open):
    """Voicenter, Green Invoice, iCount and the ``test`` source: a JSON object with an id."""

    event_id: str | None = Field(default=None, min_length=1)
    id: str | int | None = None
    event_type: str | None = Field(default=None, min_length=1)
    type: str | None = None
    event: str | None = None


class CarrierEvent(GenericEvent):
    """A shipping carrier's tracking update."""

    tracking_number: str = Field(min_length=1)
    status: str = Field(min_length=1)
    carrier: str | None = None
    occurred_at: datetime | None = None


class WhatsAppChange(_Open):
    field: str = Field(min_length=1)
    value: dict[str, Any]


class WhatsAppEntry(_Open):
    id: str = Field(min_length=1)
    changes: list[WhatsAppChange] = Field(min_length=1)


class WhatsAppNotification(_Open):
    """The WhatsApp Cloud API's webhook notification."""

    object: Literal["whatsapp_business_account"]
    entry: list[WhatsAppEntry] = Field(min_length=1)


class PubSubMessage(_Open):
    message_id: str = Field(alias="messageId", min_length=1)
    data: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    publish_time: str | None = Field(default=None, alias="publishTime")


class PubSubPush(_Open):
    """Google (Business Profile notifications) over a Pub/Sub push subscription."""

    message: PubSubMessage
    subscription: str = Field(min_length=1)


class CommerceResource(_Open):
    """A Shopify or WooCommerce resource (order, product, ...): a JSON object."""

    id: int | str | None = None


MODELS: dict[str, type[BaseModel]] = {
    "voicenter": GenericEvent, "greeninvoice": GenericEvent, "icount": GenericEvent,
    "test": GenericEvent, "carrier": CarrierEvent, "whatsapp": WhatsAppNotification,
    "google": PubSubPush, "shopify": CommerceResource, "woocommerce": CommerceResource,
}


@dataclass(frozen=True)
class Identity:
    event_id: str
    event_type: str


def validate(source: str, payload: dict[str, Any]) -> BaseModel:
    """``payload`` as its source's model; pydantic's ValidationError when it does not fit."""
    return MODELS[source].model_validate(payload)


def identify(
    source: str, payload: dict[str, Any], headers: Mapping[str, str], raw_body: bytes
) -> Identity:
    """The sender's event id and type (ValidationError or PayloadError when it has none)."""
    model = validate(source, payload)
    if source == "shopify":
        return Identity(_header(headers, "x-shopify-webhook-id", "x-shopify-event-id"),
                        _header(headers, "x-shopify-topic"))
    if source == "woocommerce":
        return Identity(_header(headers, "x-wc-webhook-delivery-id"),
                        _header(headers, "x-wc-webhook-topic"))
    if isinstance(model, WhatsAppNotification):
        return _whatsapp(model, raw_body)
    if isinstance(model, PubSubPush):
        attrs = model.message.attributes
        return Identity(model.message.message_id,
                        attrs.get("type") or attrs.get("notificationType") or "notification")
    assert isinstance(model, GenericEvent)
    event_id = (headers.get("x-webhook-id") or model.event_id
                or (str(model.id) if model.id is not None else None))
    if not event_id:
        raise PayloadError("missing event id: send an X-Webhook-Id header or an event_id "
                           "(or id) field")
    event_type = (headers.get("x-webhook-event") or model.event_type or model.type
                  or model.event or "event")
    return Identity(event_id[:500], event_type[:200])


def _header(headers: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = headers.get(name)
        if value:
            return value[:500]
    raise PayloadError(f"missing {names[0].title()} header")


def _whatsapp(model: WhatsAppNotification, raw_body: bytes) -> Identity:
    change = model.entry[0].changes[0]
    for kind in ("messages", "statuses"):
        items = change.value.get(kind)
        if isinstance(items, list) and items and isinstance(items[0], dict) and items[0].get("id"):
            return Identity(str(items[0]["id"])[:500], kind)
    # Nothing the sender names it by: the body's digest makes an exact redelivery a duplicate.
    return Identity("sha256:" + hashlib.sha256(raw_body).hexdigest(), change.field)


__all__ = ["GENERIC_SOURCES", "MODELS", "SOURCES", "Identity", "PayloadError",
           "ValidationError", "identify", "validate"]
