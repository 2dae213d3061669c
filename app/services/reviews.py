"""Review check: new low-rated reviews still without a reply are flagged once, as activity.

Reviews arrive through the intake (webhooks) and are stored in ``reviews``; fetching them
from Google's API is a provider call that comes with the domain issue. What the data allows
today: each hourly check flags every unreplied review rated at or below the threshold that
was not flagged before, records one activity event listing them, and tells each business
owner (template ``reviews.needs_reply``, once per owner and check) through
``notifications.send``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.messaging.notices import Notice, owner_notices

_FLAG = text("""
    UPDATE reviews SET flagged_at = now()
    WHERE tenant_id = :tenant AND flagged_at IS NULL AND replied_at IS NULL
      AND rating <= :max_rating
    RETURNING id, rating""")
_ACTIVITY = text("""
    INSERT INTO activity_events (tenant_id, event_type, title, description, metadata, source,
                                 source_id)
    VALUES (:tenant, 'review.needs_reply', :title, :description, CAST(:metadata AS jsonb),
            'reviews.check', :source_id)""")


def flag_reviews_needing_reply(
    session: Session, tenant: uuid.UUID, slot: datetime, max_rating: int = 3
) -> tuple[int, list[Notice]]:
    """Flag unreplied reviews rated <= ``max_rating``: how many, and the owners' notices."""
    rows = session.execute(_FLAG, {"tenant": tenant, "max_rating": max_rating}).all()
    if not rows:
        return 0, []
    session.execute(_ACTIVITY, {
        "tenant": tenant,
        "title": f"{len(rows)} review(s) need a reply",
        "description": f"Reviews rated {max_rating} or less without a reply",
        "metadata": json.dumps({"review_ids": sorted(str(r[0]) for r in rows),
                                "ratings": sorted(r[1] for r in rows)}),
        "source_id": f"reviews.check:{slot.isoformat()}",
    })
    notices = owner_notices(session, "reviews.needs_reply",
                            {"count": len(rows), "max_rating": max_rating},
                            f"reviews.check:{slot.isoformat()}")
    return len(rows), notices
