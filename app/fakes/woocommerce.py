"""A fake WooCommerce REST API v3 (``/wp-json/wc/v3/orders``, ``/products``).

Like WooCommerce: HTTP Basic with the consumer key and secret, or 401
``{"code": "woocommerce_rest_cannot_view", ...}``; ``page`` / ``per_page`` (at most 100,
else 400 ``rest_invalid_param``) with ``X-WP-Total`` and ``X-WP-TotalPages`` headers;
``modified_after`` with ``orderby=modified``; a page past the end is an empty list.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

from app.fakes.base import Answer, FakeServer, Received

BASE_TIME = datetime(2026, 11, 1)


class FakeWooCommerce(FakeServer):
    name = "fake-woocommerce"

    def __init__(self, *, consumer_key: str = "ck_test", consumer_secret: str = "cs_test"
                 ) -> None:
        super().__init__()
        self.credentials = base64.b64encode(f"{consumer_key}:{consumer_secret}".encode()).decode()
        self.items: dict[str, dict[int, dict[str, Any]]] = {"orders": {}, "products": {}}
        self._clock = 0

    def _tick(self) -> str:
        self._clock += 1
        return (BASE_TIME + timedelta(seconds=self._clock)).strftime("%Y-%m-%dT%H:%M:%S")

    def add(self, resource: str, count: int) -> None:
        with self.lock:
            start = len(self.items[resource]) + 1
            for n in range(start, start + count):
                self.items[resource][n] = {
                    "id": n, "status": "processing", "total": f"{n}.00",
                    "name": f"Item {n}", "sku": f"W-{n}", "stock_quantity": n,
                    "stock_status": "instock", "manage_stock": True,
                    "date_modified_gmt": self._tick(),
                }

    def touch(self, resource: str, ids: list[int]) -> None:
        with self.lock:
            for n in ids:
                self.items[resource][n]["date_modified_gmt"] = self._tick()

    def answer(self, request: Received) -> Answer:
        if request.headers.get("authorization") != f"Basic {self.credentials}":
            return Answer(401, {"code": "woocommerce_rest_cannot_view",
                                "message": "Sorry, you cannot list resources.",
                                "data": {"status": 401}})
        resource = request.path.removeprefix("/wp-json/wc/v3/")
        if resource not in self.items:
            return Answer(404, {"code": "rest_no_route", "message": "No route was found "
                                "matching the URL and request method.", "data": {"status": 404}})
        try:
            page = int(request.param("page") or 1)
            per_page = int(request.param("per_page") or 10)
        except ValueError:
            page = per_page = 0
        if not 1 <= per_page <= 100 or page < 1:
            return Answer(400, {"code": "rest_invalid_param",
                                "message": "Invalid parameter(s): per_page",
                                "data": {"status": 400}})
        with self.lock:
            items = sorted(self.items[resource].values(),
                           key=lambda i: (i["date_modified_gmt"], i["id"]))
        after = request.param("modified_after")
        if after:
            since = datetime.fromisoformat(after).replace(tzinfo=None)
            items = [i for i in items if datetime.fromisoformat(i["date_modified_gmt"]) > since]
        total = len(items)
        pages = (total + per_page - 1) // per_page
        chosen = [dict(i) for i in items[(page - 1) * per_page: page * per_page]]
        fields = request.param("_fields")
        if fields:
            wanted = set(fields.split(","))
            chosen = [{k: v for k, v in i.items() if k in wanted} for i in chosen]
        return Answer(200, chosen, {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)})
