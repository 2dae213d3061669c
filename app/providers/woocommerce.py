"""WooCommerce REST API v3: orders, products and inventory, page by page.

Pagination is by page number (``page``, ``per_page``); each answer says how many pages
there are in ``X-WP-TotalPages``. Incremental syncs ask for ``modified_after`` ordered by
modification time. Authentication is the store's consumer key and secret (HTTP Basic over
HTTPS). WooCommerce core has no fulfilment resource (shipment tracking is a plugin), so
``fulfillments`` is refused as a permanent error. Errors come as
``{"code", "message", "data": {"status"}}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.providers import http
from app.providers.errors import PermanentError, RetryableError
from app.providers.pages import Page, Record, latest, timestamp

PROVIDER = "woocommerce"
SUPPORTED = ("orders", "products", "inventory")
INVENTORY_FIELDS = "id,sku,stock_quantity,stock_status,manage_stock,date_modified_gmt"


class WooCommerceClient:
    def __init__(self, base_url: str, consumer_key: str, consumer_secret: str,
                 timeouts: http.Timeouts) -> None:
        self.base_url = base_url
        self._auth = (consumer_key, consumer_secret)
        self.timeouts = timeouts

    def __repr__(self) -> str:
        return f"WooCommerceClient(base_url={self.base_url!r})"

    def fetch(self, resource: str, *, since: datetime | None, cursor: str | None,
              limit: int) -> Page:
        if resource not in SUPPORTED:
            raise PermanentError(PROVIDER, f"resource {resource!r} is not in WooCommerce core "
                                 f"(supported: {', '.join(SUPPORTED)})")
        page = int(cursor) if cursor else 1
        params: dict[str, Any] = {"page": page, "per_page": limit, "orderby": "modified",
                                  "order": "asc", "dates_are_gmt": "true"}
        if since is not None:
            params["modified_after"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        if resource == "inventory":
            params["_fields"] = INVENTORY_FIELDS
        endpoint = "orders" if resource == "orders" else "products"
        response = http.send(
            http.client(self.base_url, self.timeouts), PROVIDER, "GET",
            f"/wp-json/wc/v3/{endpoint}", params=params, auth=self._auth,
        )
        items = http.json_body(response, PROVIDER)
        if not isinstance(items, list):
            raise RetryableError(PROVIDER, "answer is not a list", status=response.status_code)
        try:
            total = int(response.headers.get("X-WP-TotalPages", "0"))
        except ValueError:
            total = 0
        records = [Record(str(i["id"]), i, timestamp(i.get("date_modified_gmt"))) for i in items]
        return Page(records=records, next_cursor=str(page + 1) if page < total else None,
                    high_water=latest([r.updated_at for r in records]),
                    total_pages=total or None, items=len(items))
