"""A fake carrier API: ``POST /v1/shipments`` (idempotent by ``Idempotency-Key``) and
``GET /v1/shipments/{id}/tracking``.

Like carrier aggregators: Bearer key or 401; no ``Idempotency-Key`` is a 400; the same key
returns the shipment it created first (``created`` counts real creations); a destination
outside ``countries`` is a 422 ``{"error": {"code": "invalid_address", ...}}``;
``fail_after_create(n)`` creates the next ``n`` shipments but answers 503 (the client saw
an error, the label exists: a retry must not create a second one).
"""

from __future__ import annotations

from typing import Any

from app.fakes.base import Answer, FakeServer, Received


class FakeCarrier(FakeServer):
    name = "fake-carrier"

    def __init__(self, *, api_key: str = "carrier-test-key",
                 countries: tuple[str, ...] = ("US", "GB", "DE", "FR", "IL")) -> None:
        super().__init__()
        self.api_key = api_key
        self.countries = countries
        self.shipments: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self._fail_after_create = 0

    @property
    def created(self) -> int:
        return len(self.shipments)

    def fail_after_create(self, times: int) -> None:
        with self.lock:
            self._fail_after_create = times

    def set_status(self, shipment_id: str, status: str, description: str) -> None:
        with self.lock:
            shipment = self.shipments[shipment_id]
            shipment["status"] = status
            shipment["events"].append({"status": status, "description": description})

    def answer(self, request: Received) -> Answer:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Answer(401, {"error": {"code": "unauthorized", "message": "bad API key"}})
        if request.method == "POST" and request.path == "/v1/shipments":
            return self._create(request)
        parts = request.path.strip("/").split("/")
        if request.method == "GET" and len(parts) == 4 and parts[:2] == ["v1", "shipments"] \
                and parts[3] == "tracking":
            with self.lock:
                shipment = self.shipments.get(parts[2])
            if shipment is None:
                return Answer(404, {"error": {"code": "not_found", "message": "no shipment"}})
            return Answer(200, {"status": shipment["status"], "events": shipment["events"]})
        return Answer(404, {"error": {"code": "not_found", "message": "no such route"}})

    def _create(self, request: Received) -> Answer:
        key = request.headers.get("idempotency-key")
        if not key:
            return Answer(400, {"error": {"code": "idempotency_key_required",
                                          "message": "Idempotency-Key header required"}})
        body = request.json or {}
        country = (body.get("recipient") or {}).get("country")
        if country not in self.countries:
            return Answer(422, {"error": {"code": "invalid_address",
                                          "message": "unsupported destination country"}})
        with self.lock:
            known = self.by_key.get(key)
            if known is not None:
                return Answer(200, self._public(self.shipments[known]))
            shipment_id = f"shp_{len(self.shipments) + 1}"
            self.shipments[shipment_id] = {
                "id": shipment_id, "tracking_number": f"1Z{len(self.shipments) + 1:08d}",
                "label_url": f"{self.url}/labels/{shipment_id}.pdf", "status": "created",
                "reference": body.get("reference"), "events": []}
            self.by_key[key] = shipment_id
            if self._fail_after_create > 0:
                self._fail_after_create -= 1
                return Answer(503, {"error": {"code": "unavailable",
                                              "message": "upstream timeout"}})
            return Answer(201, self._public(self.shipments[shipment_id]))

    @staticmethod
    def _public(shipment: dict[str, Any]) -> dict[str, Any]:
        return {k: shipment[k] for k in ("id", "tracking_number", "label_url", "status")}
