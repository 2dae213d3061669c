"""``photos.request`` (fired weekly per tenant): record photo requests for stale locations and
send each business owner one message about them, in the same transaction."""

from __future__ import annotations

from app.jobs import current_session, current_tenant, job
from app.messaging.notify import send_notice
from app.services.photos import request_photos
from app.services.recurring import SLOT_UNIQUE_WINDOW, parse_slot


@job(actor_name="photos.request", queue_name="scheduled", unique_window=SLOT_UNIQUE_WINDOW,
     throws=(ValueError,))
def request(slot: str, stale_days: int = 7) -> dict[str, int]:
    tenant = current_tenant()
    assert tenant is not None
    session = current_session()
    requested, notices = request_photos(session, tenant, parse_slot(slot), stale_days)
    for notice in notices:
        send_notice(session, notice)
    return {"requested": requested, "notified": len(notices)}
