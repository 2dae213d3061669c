"""What every scheduler-fed job shares: its slot argument and how long a slot stays unique."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: A finished slot's unique key is kept this long (actor option ``unique_window``), longer
#: than any catch-up reaches back, so a duplicate firing of an old slot stays a no-op.
SLOT_UNIQUE_WINDOW = 8 * 24 * 3600.0


def parse_slot(slot: str) -> datetime:
    """The ISO 8601 slot the scheduler passes, as an aware UTC datetime."""
    value = datetime.fromisoformat(slot)
    if value.tzinfo is None:
        raise ValueError(f"slot must carry a UTC offset, got {slot!r}")
    return value.astimezone(UTC)


def tenant_zone(name: str | None) -> ZoneInfo:
    """A tenant's or user's time zone; an unknown name falls back to UTC, never fails a job."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
