"""``reviews.check`` (fired hourly per tenant): flag unreplied low-rated reviews and tell the
business owners, in the same transaction."""

from __future__ import annotations

from app.jobs import current_session, current_tenant, job
from app.messaging.notify import send_notice
from app.services.recurring import SLOT_UNIQUE_WINDOW, parse_slot
from app.services.reviews import flag_reviews_needing_reply


@job(actor_name="reviews.check", queue_name="scheduled", unique_window=SLOT_UNIQUE_WINDOW,
     throws=(ValueError,))
def check(slot: str, max_rating: int = 3) -> dict[str, int]:
    tenant = current_tenant()
    assert tenant is not None
    session = current_session()
    flagged, notices = flag_reviews_needing_reply(session, tenant, parse_slot(slot), max_rating)
    for notice in notices:
        send_notice(session, notice)
    return {"flagged": flagged, "notified": len(notices)}
