"""WhatsApp through a Cloud API-style endpoint (``POST /{version}/{phone_number_id}/messages``).

A JSON text message with a bearer token, the delivery's key in an ``Idempotency-Key``
header. Errors come as ``{"error": {"code", "message", ...}}``: throttling (HTTP 429, codes
4, 80007, 130429, 131048, 131056) and server trouble (5xx, codes 1, 2, 131000, 131016) are
retried; everything else is permanent, e.g. 131026 (undeliverable), 131050 (the user
stopped these messages), 100 (invalid parameter such as a malformed number), 190 (token).
The real API cannot be asked about a key afterwards: use ``reconcile="dedupe"`` only with a
gateway that drops repeated keys, else ``none``.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from app.providers.outbound import (
    Accepted,
    OutboundMessage,
    PermanentProviderError,
    Reconcile,
    TransientProviderError,
)
from app.providers.outbound_http import (
    Timeouts,
    client,
    json_body,
    retry_after,
    transport_error,
)

NAME = "whatsapp_cloud"
THROTTLED = {4, 80007, 130429, 131048, 131056}
SERVER_TROUBLE = {1, 2, 131000, 131016}


class WhatsAppSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(default="https://graph.facebook.com", min_length=1)
    api_version: str = Field(default="v19.0", pattern=r"^v\d+\.\d+$")
    phone_number_id: str = Field(min_length=1, pattern=r"^[0-9A-Za-z_-]+$")
    reconcile: Reconcile = Reconcile.NONE


class WhatsAppCloud:
    name = NAME

    def __init__(self, settings: WhatsAppSettings, access_token: str, timeouts: Timeouts) -> None:
        self.settings = settings
        self.reconcile = settings.reconcile
        self._token = access_token
        self._timeouts = timeouts
        base = settings.base_url.rstrip("/")
        self._url = f"{base}/{settings.api_version}/{settings.phone_number_id}/messages"

    def send(self, message: OutboundMessage) -> Accepted:
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp", "recipient_type": "individual",
            "to": message.recipient, "type": "text",
            "text": {"preview_url": False, "body": message.text},
        }
        headers = {"Authorization": f"Bearer {self._token}",
                   "Idempotency-Key": message.idempotency_key}
        try:
            response = client(self._timeouts).post(self._url, json=payload, headers=headers)
        except httpx.TransportError as exc:
            raise transport_error(NAME, exc) from None
        body = json_body(response)
        if response.is_success:
            messages = body.get("messages")
            first = messages[0] if isinstance(messages, list) and messages else {}
            wamid = first.get("id") if isinstance(first, dict) else None
            if not isinstance(wamid, str) or not wamid:
                raise TransientProviderError(NAME, "accepted without a message id",
                                             maybe_sent=True)
            replayed = response.headers.get("Idempotent-Replayed", "").lower() == "true"
            return Accepted(wamid, replayed=replayed)
        found = body.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        code = error.get("code")
        reason = f"HTTP {response.status_code}, code {code}: {error.get('message') or ''}".strip()
        if response.status_code == 429 or code in THROTTLED:
            raise TransientProviderError(NAME, reason, retry_after=retry_after(response))
        if response.status_code >= 500 or code in SERVER_TROUBLE:
            raise TransientProviderError(NAME, reason, retry_after=retry_after(response),
                                         maybe_sent=True)
        raise PermanentProviderError(NAME, reason)

    def lookup(self, idempotency_key: str) -> Accepted | None:
        raise NotImplementedError("the WhatsApp Cloud API cannot be asked about a key")
