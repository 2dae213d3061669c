"""Job payloads from the plans, validated with pydantic so bad input fails with a clear error."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

WebhookSource = Literal[
    "voicenter", "greeninvoice", "icount", "whatsapp", "google", "shopify", "woocommerce",
    "carrier", "test",
]


class WebhookJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1)
    event_id: str = Field(min_length=1)
    event_type: str = Field(min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)
    tenant_id: uuid.UUID | None = None
    received_at: datetime


class ActivityJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: uuid.UUID
    event_type: str = Field(min_length=1)
    title: str = Field(min_length=1)
    description: str | None = None
    metadata: dict[str, Any] | None = None
    source: str = Field(min_length=1)
    source_id: str | None = None
