"""What a store adapter returns: one page of records and the cursor of the next page.

A sync walks pages until ``next_cursor`` is None. The cursor is opaque to the caller (a
Shopify ``page_info``, a WooCommerce page number) and is saved with the page's records, so
a sync that stops resumes from the page after the last one it committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Resource = Literal["orders", "products", "inventory", "fulfillments"]
RESOURCES: tuple[str, ...] = ("orders", "products", "inventory", "fulfillments")


@dataclass(frozen=True)
class Record:
    """One remote record: its id on the platform, its JSON, when it last changed there."""

    external_id: str
    data: dict[str, Any]
    updated_at: datetime | None


@dataclass(frozen=True)
class Page:
    records: list[Record]
    #: Where the next page starts; None on the last page.
    next_cursor: str | None
    #: The latest change time among the items fetched (the next incremental sync's start).
    high_water: datetime | None = None
    #: Total pages when the platform says (WooCommerce does, Shopify does not).
    total_pages: int | None = None
    items: int = field(default=0)


def timestamp(value: Any, *, naive_is_utc: bool = True) -> datetime | None:
    """An ISO 8601 time from a platform (``Z`` and offsets accepted; naive = UTC)."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None and naive_is_utc:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def latest(times: list[datetime | None]) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None
