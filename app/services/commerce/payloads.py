"""Job payloads of the commerce family (plan 004), validated with pydantic."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.providers.pages import Resource

Platform = Literal["shopify", "woocommerce"]


class SyncRequest(BaseModel):
    """Sync one resource of one store channel, incrementally from its last watermark."""

    model_config = ConfigDict(extra="forbid")

    channel_id: uuid.UUID
    resource: Resource
    #: Ignore the watermark and fetch everything (a run in progress is still resumed).
    full: bool = False
    page_size: int | None = Field(default=None, ge=1, le=250)


def sync_key(platform: str, resource: str, channel_id: uuid.UUID | str) -> str:
    """The deterministic unique key of a sync: ``shopify-orders-channel-<id>``."""
    return f"{platform}-{resource}-channel-{channel_id}"


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=300)
    line2: str | None = Field(default=None, max_length=300)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=2)


class Parcel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight_grams: int = Field(gt=0, le=1_000_000)


class ShipmentRequest(BaseModel):
    """Create a shipment for an order with a carrier account (a ``carrier`` channel)."""

    model_config = ConfigDict(extra="forbid")

    carrier_channel_id: uuid.UUID
    order_ref: str = Field(min_length=1, max_length=200)
    recipient: Address
    parcels: list[Parcel] = Field(min_length=1, max_length=50)
    service: str = Field(default="standard", min_length=1, max_length=50)

    def carrier_body(self) -> dict[str, Any]:
        return {"reference": self.order_ref, "service": self.service,
                "recipient": self.recipient.model_dump(exclude_none=True),
                "parcels": [p.model_dump() for p in self.parcels]}


def shipment_key(carrier_channel_id: uuid.UUID | str, order_ref: str) -> str:
    return f"shipment-create-{carrier_channel_id}-{order_ref}"
