"""A parcel carrier's REST API: create a shipment (idempotent), read its tracking.

Carriers differ; this adapter speaks one common shape (``POST /v1/shipments`` with an
``Idempotency-Key`` header, ``GET /v1/shipments/{id}/tracking``), the way most carrier
aggregators do. The idempotency key is recorded before the call, so a retry after a crash
asks for the same shipment again and gets it back instead of a second label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from app.providers import http
from app.providers.errors import RetryableError

PROVIDER = "carrier"


@dataclass(frozen=True)
class CarrierShipment:
    id: str
    tracking_number: str | None
    label_url: str | None
    status: str


@dataclass(frozen=True)
class Tracking:
    status: str
    events: list[dict[str, Any]]


class CarrierClient:
    def __init__(self, base_url: str, api_key: str, timeouts: http.Timeouts) -> None:
        self.base_url = base_url
        self._key = api_key
        self.timeouts = timeouts

    def __repr__(self) -> str:
        return f"CarrierClient(base_url={self.base_url!r})"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}

    def create_shipment(self, idempotency_key: str, request: dict[str, Any]) -> CarrierShipment:
        response = http.send(
            http.client(self.base_url, self.timeouts), PROVIDER, "POST", "/v1/shipments",
            json=request, headers={**self._headers(), "Idempotency-Key": idempotency_key},
        )
        body = http.json_body(response, PROVIDER)
        try:
            return CarrierShipment(id=str(body["id"]), tracking_number=body.get("tracking_number"),
                                   label_url=body.get("label_url"),
                                   status=str(body.get("status") or "created"))
        except (KeyError, TypeError):
            raise RetryableError(PROVIDER, "answer has no shipment id",
                                 status=response.status_code) from None

    def tracking(self, shipment_id: str) -> Tracking:
        response = http.send(
            http.client(self.base_url, self.timeouts), PROVIDER, "GET",
            f"/v1/shipments/{quote(shipment_id, safe='')}/tracking", headers=self._headers(),
        )
        body = http.json_body(response, PROVIDER)
        if not isinstance(body, dict) or "status" not in body:
            raise RetryableError(PROVIDER, "answer has no status", status=response.status_code)
        events = body.get("events")
        return Tracking(status=str(body["status"]),
                        events=events if isinstance(events, list) else [])
