"""``tokens.refresh`` (fired per tenant): mark expiring integrations and enqueue one
``tokens.refresh_integration`` each, unique per (integration, expiry)."""

from __future__ import annotations

import uuid

from app.jobs import current_session, current_tenant, enqueue, job
from app.services.recurring import SLOT_UNIQUE_WINDOW, parse_slot
from app.services.tokens import NoTokenRefresher, mark_expiring, refresh_integration


@job(actor_name="tokens.refresh_integration", queue_name="scheduled",
     unique_window=SLOT_UNIQUE_WINDOW, throws=(NoTokenRefresher,))
def refresh_one(integration_id: str) -> str | None:
    expires = refresh_integration(current_session(), uuid.UUID(integration_id))
    return expires.isoformat() if expires else None


@job(actor_name="tokens.refresh", queue_name="scheduled", unique_window=SLOT_UNIQUE_WINDOW,
     throws=(ValueError,))
def refresh(slot: str, window_seconds: float = 3600) -> dict[str, int]:
    tenant = current_tenant()
    assert tenant is not None
    session = current_session()
    expiring = mark_expiring(session, tenant, parse_slot(slot), window_seconds)
    for item in expiring:
        enqueue(session, refresh_one, str(item.id),
                unique_key=f"token-refresh:{item.id}:{item.expires_at.isoformat()}")
    return {"expiring": len(expiring)}
