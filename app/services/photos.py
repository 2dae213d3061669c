"""Weekly photo request: every active location without a recent photo gets one request.

The request is recorded (``photo_requests``, status ``ready``, one per location and week)
and each business owner gets one message listing the locations (WhatsApp when the owner has
a phone, else email; template ``photos.request``), unique per owner and week, through
``notifications.send``, which marks the week's requests ``sent`` once delivered.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.messaging import references
from app.messaging.notices import Notice, owner_notices
from app.services.recurring import tenant_zone

_TENANT_ZONE = text("SELECT timezone FROM tenants WHERE id = :tenant")
_REQUEST = text("""
    INSERT INTO photo_requests (tenant_id, location_id, week_start)
    SELECT tenant_id, id, :week FROM locations
    WHERE tenant_id = :tenant AND active
      AND (last_photo_at IS NULL OR last_photo_at < :stale_before)
    ON CONFLICT (location_id, week_start) DO NOTHING
    RETURNING id, location_id""")
_NAMES = text("SELECT name FROM locations WHERE id = ANY(:ids) ORDER BY name")
_ACTIVITY = text("""
    INSERT INTO activity_events (tenant_id, event_type, title, source, source_id)
    VALUES (:tenant, 'photos.requested', :title, 'photos.request', :source_id)""")


def request_photos(
    session: Session, tenant: uuid.UUID, slot: datetime, stale_days: int = 7
) -> tuple[int, list[Notice]]:
    """Record this week's photo requests: how many were new, and the owners' notices."""
    zone = tenant_zone(session.execute(_TENANT_ZONE, {"tenant": tenant}).scalar())
    local = slot.astimezone(zone).date()
    week = local - timedelta(days=local.weekday())
    rows = session.execute(_REQUEST, {
        "tenant": tenant, "week": week, "stale_before": slot - timedelta(days=stale_days),
    }).all()
    if not rows:
        return 0, []
    session.execute(_ACTIVITY, {"tenant": tenant,
                                "title": f"Photo requests for {len(rows)} location(s)",
                                "source_id": f"photos.request:{week.isoformat()}"})
    names = list(session.execute(_NAMES, {"ids": [r.location_id for r in rows]}).scalars())
    notices = owner_notices(session, "photos.request",
                            {"locations": names, "week": week.isoformat()},
                            f"photos.request:{week.isoformat()}",
                            reference=references.photo_week(week))
    return len(rows), notices
