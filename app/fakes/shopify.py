"""A fake Shopify Admin REST API: orders and products with cursor pagination.

Like Shopify: ``X-Shopify-Access-Token`` or 401 ``{"errors": "[API] Invalid API key..."}``;
the first page takes filters (``status``, ``updated_at_min``, ``order``, ``fields``), later
pages only ``limit``, ``fields`` and the opaque ``page_info`` named in the previous answer's
``Link`` header (anything else with ``page_info`` is a 400); ``limit`` above 250 is a 400;
``throttle(n)`` answers the next ``n`` requests with 429 and ``Retry-After: 1.0``.
``hold(resource, page)`` keeps that page's answer until ``release()`` (to kill a sync
mid-way). Items are served in (updated_at, id) order.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from app.fakes.base import Answer, FakeServer, Received

API_VERSION = "2024-01"
BASE_TIME = datetime(2026, 11, 1, tzinfo=UTC)
AUTH_ERROR = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong "
              "password)"}
THROTTLED = {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to "
             "resume uninterrupted service."}
PAGE_PARAMS = {"limit", "fields", "page_info"}


def _token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _untoken(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class FakeShopify(FakeServer):
    name = "fake-shopify"

    def __init__(self, *, access_token: str = "shpat_test") -> None:
        super().__init__()
        self.access_token = access_token
        self.items: dict[str, dict[int, dict[str, Any]]] = {"orders": {}, "products": {}}
        self._clock = 0
        self._throttle = 0
        self._held: set[tuple[str, int]] = set()
        self.released = threading.Event()
        #: Seconds each page takes to answer.
        self.latency = 0.0

    # -- the store's data -----------------------------------------------------------------

    def _tick(self) -> str:
        self._clock += 1
        return (BASE_TIME + timedelta(seconds=self._clock)).isoformat()

    def add_orders(self, count: int) -> list[int]:
        with self.lock:
            start = len(self.items["orders"]) + 1
            for n in range(start, start + count):
                self.items["orders"][n] = {
                    "id": 1000 + n, "name": f"#{1000 + n}", "total_price": f"{n}.00",
                    "financial_status": "paid", "updated_at": self._tick(),
                    "fulfillments": [{"id": 5000 + n, "status": "success",
                                      "tracking_number": f"TRK{n}"}] if n % 2 else [],
                }
            return [1000 + n for n in range(start, start + count)]

    def add_products(self, count: int) -> None:
        with self.lock:
            start = len(self.items["products"]) + 1
            for n in range(start, start + count):
                self.items["products"][n] = {
                    "id": 7000 + n, "title": f"Product {n}", "updated_at": self._tick(),
                    "variants": [{"id": 9000 + n, "sku": f"SKU-{n}", "inventory_item_id":
                                  8000 + n, "inventory_quantity": n}],
                }

    def touch(self, resource: str, ids: list[int], **changes: Any) -> None:
        """Change items (a later ``updated_at``): an incremental sync should fetch them."""
        with self.lock:
            for item in self.items[resource].values():
                if item["id"] in ids:
                    item.update(changes, updated_at=self._tick())

    def throttle(self, requests: int) -> None:
        with self.lock:
            self._throttle = requests

    def hold(self, resource: str, page: int) -> None:
        self._held.add((resource, page))

    def release(self) -> None:
        self.released.set()

    def page_requests(self, resource: str) -> list[Received]:
        return [r for r in self.requests(f"/admin/api/{API_VERSION}/{resource}.json")
                if r.status == 200]

    # -- the API --------------------------------------------------------------------------

    def answer(self, request: Received) -> Answer:
        if request.headers.get("x-shopify-access-token") != self.access_token:
            return Answer(401, AUTH_ERROR)
        with self.lock:
            if self._throttle > 0:
                self._throttle -= 1
                return Answer(429, THROTTLED, {"Retry-After": "1.0"})
        prefix = f"/admin/api/{API_VERSION}/"
        resource = request.path.removeprefix(prefix).removesuffix(".json")
        if not request.path.startswith(prefix) or resource not in self.items:
            return Answer(404, {"errors": "Not Found"})
        try:
            limit = int(request.param("limit") or 50)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 250:
            return Answer(400, {"errors": {"limit": ["must be between 1 and 250"]}})
        page_info = request.param("page_info")
        if page_info:
            extra = sorted(set(request.query) - PAGE_PARAMS)
            if extra:
                return Answer(400, {"errors": {"page_info": [
                    f"cannot be combined with {', '.join(extra)}"]}})
            state = _untoken(page_info)
            if state is None or state.get("resource") != resource:
                return Answer(400, {"errors": {"page_info": ["Invalid value."]}})
        else:
            state = {"resource": resource, "since": request.param("updated_at_min"),
                     "after": None, "page": 0}
        if (resource, state["page"] + 1) in self._held:
            self.released.wait(60)
        if self.latency:
            time.sleep(self.latency)
        return self._page(request, resource, limit, state)

    def _page(self, request: Received, resource: str, limit: int,
              state: dict[str, Any]) -> Answer:
        since = datetime.fromisoformat(state["since"]) if state.get("since") else None
        with self.lock:
            items = sorted(self.items[resource].values(), key=lambda i: (i["updated_at"], i["id"]))
        if since is not None:
            items = [i for i in items if datetime.fromisoformat(i["updated_at"]) >= since]
        if state.get("after"):
            after = tuple(state["after"])
            items = [i for i in items if (i["updated_at"], i["id"]) > after]
        page, rest = items[:limit], items[limit:]
        fields = request.param("fields")
        if fields:
            wanted = set(fields.split(","))
            page = [{k: v for k, v in i.items() if k in wanted} for i in page]
        else:
            page = [dict(i) for i in page]
        headers = {}
        if rest and page:
            last = items[limit - 1]
            token = _token({"resource": resource, "since": state.get("since"),
                            "after": [last["updated_at"], last["id"]],
                            "page": state["page"] + 1})
            query = {"limit": limit, "page_info": token, **({"fields": fields} if fields else {})}
            headers["Link"] = (f'<{self.url}{request.path}?{urlencode(query)}>; rel="next"')
        return Answer(200, {resource: page}, headers)
