"""Weekly photo request: every active location without a recent photo gets one request.

The request is recorded (``photo_requests``, status ``ready``, one per location and week);
sending it to the business owner over WhatsApp is a notification provider call that comes
with the domain issue.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.services.recurring import tenant_zone

_TENANT_ZONE = text("SELECT timezone FROM tenants WHERE id = :tenant")
_REQUEST = text("""
    INSERT INTO photo_requests (tenant_id, location_id, week_start)
    SELECT tenant_id, id, :week FROM locations
    WHERE tenant_id = :tenant AND active
      AND (last_photo_at IS NULL OR last_photo_at < :stale_before)
    ON CONFLICT (location_id, week_start) DO NOTHING
    RETURNING id""")
_ACTIVITY = text("""
    INSERT INTO activity_events (tenant_id, event_type, title, source, source_id)
    VALUES (:tenant, 'photos.requested', :title, 'photos.request', :source_id)""")


def request_photos(
    session: Session, tenant: uuid.UUID, slot: datetime, stale_days: int = 7
) -> int:
    """Record this week's photo requests; returns how many were new."""
    zone = tenant_zone(session.execute(_TENANT_ZONE, {"tenant": tenant}).scalar())
    local = slot.astimezone(zone).date()
    week = local - timedelta(days=local.weekday())
    rows = session.execute(_REQUEST, {
        "tenant": tenant, "week": week, "stale_before": slot - timedelta(days=stale_days),
    }).all()
    if rows:
        session.execute(_ACTIVITY, {"tenant": tenant,
                                    "title": f"Photo requests for {len(rows)} location(s)",
                                    "source_id": f"photos.request:{week.isoformat()}"})
    return len(rows)
