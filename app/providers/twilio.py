"""SMS through a Twilio-style REST API (``POST /2010-04-01/Accounts/{sid}/Messages.json``).

Form-encoded ``To``/``From``/``Body`` with HTTP basic auth (account SID, auth token), the
delivery's key in an ``Idempotency-Key`` header. Twilio's error codes decide what is
permanent: 21211 (invalid 'To' number), 21610 (the recipient replied STOP), 21614 (not a
mobile number) and any other 4xx; 429 (and code 20429) and 5xx are retried, honouring
``Retry-After``. ``reconcile="lookup"`` lists the messages sent under the key
(``GET Messages.json?IdempotencyKey=``) and trusts only an entry that echoes the key back;
only enable it against an API that supports that filter.
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

NAME = "twilio"
RATE_LIMITED = {20429}


class TwilioSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(default="https://api.twilio.com", min_length=1)
    account_sid: str = Field(min_length=1)
    from_number: str = Field(min_length=1)
    reconcile: Reconcile = Reconcile.NONE


class TwilioSms:
    name = NAME

    def __init__(self, settings: TwilioSettings, auth_token: str, timeouts: Timeouts) -> None:
        self.settings = settings
        self.reconcile = settings.reconcile
        self._auth = (settings.account_sid, auth_token)
        self._timeouts = timeouts
        base = settings.base_url.rstrip("/")
        self._url = f"{base}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"

    def send(self, message: OutboundMessage) -> Accepted:
        form = {"To": message.recipient, "From": self.settings.from_number,
                "Body": message.text}
        response = self._call("POST", data=form,
                              headers={"Idempotency-Key": message.idempotency_key})
        body = json_body(response)
        sid = body.get("sid")
        if not isinstance(sid, str) or not sid:
            raise TransientProviderError(NAME, "accepted without a message sid",
                                         maybe_sent=True)
        replayed = response.headers.get("Idempotent-Replayed", "").lower() == "true"
        return Accepted(sid, replayed=replayed)

    def lookup(self, idempotency_key: str) -> Accepted | None:
        response = self._call("GET", params={"IdempotencyKey": idempotency_key})
        for entry in json_body(response).get("messages") or []:
            if isinstance(entry, dict) and entry.get("idempotency_key") == idempotency_key:
                return Accepted(str(entry.get("sid")), replayed=True)
        return None

    def _call(self, method: str, **kwargs: Any) -> httpx.Response:
        try:
            response = client(self._timeouts).request(method, self._url, auth=self._auth,
                                                      **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(NAME, exc) from None
        if response.is_success:
            return response
        body = json_body(response)
        code = body.get("code")
        reason = f"HTTP {response.status_code}, code {code}: {body.get('message') or ''}".strip()
        if response.status_code == 429 or code in RATE_LIMITED:
            raise TransientProviderError(NAME, reason, retry_after=retry_after(response))
        if response.status_code >= 500:
            raise TransientProviderError(NAME, reason, retry_after=retry_after(response),
                                         maybe_sent=method == "POST")
        raise PermanentProviderError(NAME, reason)
