"""Shopify Admin REST API: orders, products, inventory and fulfilments, page by page.

Pagination is Shopify's cursor scheme: the first request carries the filters
(``updated_at_min`` for an incremental sync), each answer's ``Link: <...page_info=...>;
rel="next"`` header names the next page, and a ``page_info`` request may carry only
``limit`` and ``fields`` besides it. Inventory comes from the products' variants
(``inventory_quantity``), fulfilments from the orders' ``fulfillments``, both as the REST
resources return them. A 429 carries ``Retry-After`` (seconds).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.providers import http
from app.providers.errors import PermanentError, RetryableError
from app.providers.pages import Page, Record, latest, timestamp

PROVIDER = "shopify"
API_VERSION = "2024-01"

#: resource -> (endpoint, top-level key, fields to ask for or None for all, extra filters)
ENDPOINTS: dict[str, tuple[str, str, str | None, dict[str, str]]] = {
    "orders": ("orders.json", "orders", None, {"status": "any"}),
    "products": ("products.json", "products", None, {}),
    "inventory": ("products.json", "products", "id,updated_at,variants", {}),
    "fulfillments": ("orders.json", "orders", "id,updated_at,fulfillments", {"status": "any"}),
}


class ShopifyClient:
    def __init__(self, base_url: str, access_token: str, timeouts: http.Timeouts) -> None:
        self.base_url = base_url
        self._token = access_token
        self.timeouts = timeouts

    def __repr__(self) -> str:
        return f"ShopifyClient(base_url={self.base_url!r})"

    def fetch(self, resource: str, *, since: datetime | None, cursor: str | None,
              limit: int) -> Page:
        """One page of ``resource`` changed since ``since``, starting at ``cursor``."""
        try:
            endpoint, key, fields, filters = ENDPOINTS[resource]
        except KeyError:
            raise PermanentError(PROVIDER, f"no such resource {resource!r}") from None
        params: dict[str, Any] = {"limit": limit}
        if fields:
            params["fields"] = fields
        if cursor:
            params["page_info"] = cursor
        else:
            params.update(filters)
            params["order"] = "updated_at asc"
            if since is not None:
                params["updated_at_min"] = since.isoformat()
        response = http.send(
            http.client(self.base_url, self.timeouts), PROVIDER, "GET",
            f"/admin/api/{API_VERSION}/{endpoint}", params=params,
            headers={"X-Shopify-Access-Token": self._token, "Accept": "application/json"},
        )
        body = http.json_body(response, PROVIDER)
        items = body.get(key) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise RetryableError(PROVIDER, f"answer has no {key!r} list",
                                 status=response.status_code)
        return Page(records=_records(resource, items), next_cursor=_next_page_info(response),
                    high_water=latest([timestamp(i.get("updated_at")) for i in items]),
                    items=len(items))


def _next_page_info(response: Any) -> str | None:
    link = response.links.get("next")
    if not link or not link.get("url"):
        return None
    values = parse_qs(urlsplit(link["url"]).query).get("page_info")
    return values[0] if values else None


def _records(resource: str, items: list[dict[str, Any]]) -> list[Record]:
    out: list[Record] = []
    for item in items:
        changed = timestamp(item.get("updated_at"))
        if resource in ("orders", "products"):
            out.append(Record(str(item["id"]), item, changed))
        elif resource == "inventory":
            for variant in item.get("variants") or []:
                out.append(Record(str(variant["id"]), {
                    "product_id": item["id"], "sku": variant.get("sku"),
                    "inventory_item_id": variant.get("inventory_item_id"),
                    "inventory_quantity": variant.get("inventory_quantity"),
                }, changed))
        else:
            for fulfillment in item.get("fulfillments") or []:
                out.append(Record(str(fulfillment["id"]), {"order_id": item["id"], **fulfillment},
                                  changed))
    return out
