"""``activity.publish``: announce a tenant's new activity to live listeners."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from app.jobs import current_session, job
from app.services.activity import publish_activity
from app.services.payloads import ActivityJob


@job(actor_name="activity.publish", queue_name="activity", throws=(ValidationError,))
def publish(activity: dict[str, Any]) -> None:
    publish_activity(current_session(), ActivityJob.model_validate(activity))
