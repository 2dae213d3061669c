"""Activity feed: tell live listeners a tenant has a new activity (ids only, never data).

NOTIFY is not under RLS, so the payload names the tenant and event id; a listener reads the
event itself through its own tenant session. Delivered when the job's transaction commits.
"""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.services.payloads import ActivityJob

CHANNEL = "activity_feed"


def publish_activity(session: Session, activity: ActivityJob) -> None:
    payload = json.dumps({"tenant_id": str(activity.tenant_id), "source_id": activity.source_id,
                          "event_type": activity.event_type})
    session.execute(text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": CHANNEL, "payload": payload})
