"""Daily and weekly digests: per user, the tenant's activity counted over the last period.

Periods are whole local days (or Monday-to-Monday weeks) in the user's time zone, else the
tenant's: a digest fired at 07:00 in Tel Aviv covers the previous Tel Aviv day. The digest
is recorded as ``ready``; sending the email is the provider's job (not built here). RLS
keeps every query in the job's tenant.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.services.recurring import tenant_zone

Period = Literal["daily", "weekly"]

_RECIPIENTS = {
    "daily": text("""
        SELECT u.id, coalesce(u.timezone, t.timezone) FROM users u JOIN tenants t
        ON t.id = u.tenant_id WHERE u.active AND u.daily_digest ORDER BY u.id"""),
    "weekly": text("""
        SELECT u.id, coalesce(u.timezone, t.timezone) FROM users u JOIN tenants t
        ON t.id = u.tenant_id WHERE u.active AND u.weekly_digest ORDER BY u.id"""),
}
_COUNTS = text("""
    SELECT event_type, count(*) FROM activity_events
    WHERE tenant_id = :tenant AND created_at >= :start AND created_at < :end
    GROUP BY event_type ORDER BY event_type""")
# A digest already sent is never rewritten; a rebuilt ready one gets the fresh counts.
_RECORD = text("""
    INSERT INTO digests (tenant_id, user_id, period, period_start, period_end, timezone,
                         counts, total)
    VALUES (:tenant, :user, :period, :start, :end, :tz, CAST(:counts AS jsonb), :total)
    ON CONFLICT (user_id, period, period_start) DO UPDATE
    SET counts = EXCLUDED.counts, total = EXCLUDED.total
    WHERE digests.status = 'ready'
    RETURNING id""")


class DigestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID
    period: Period
    period_start: datetime
    period_end: datetime
    timezone: str


def period_bounds(period: Period, slot: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The last whole local day (or Monday-started week) ending at or before ``slot``."""
    tz = tenant_zone(timezone)
    end_day = slot.astimezone(tz).date()
    if period == "weekly":
        end_day -= timedelta(days=end_day.weekday())
    start_day = end_day - timedelta(days=7 if period == "weekly" else 1)
    return (datetime.combine(start_day, time(0), tzinfo=tz),
            datetime.combine(end_day, time(0), tzinfo=tz))


def plan_digests(session: Session, period: Period, slot: datetime) -> list[DigestRequest]:
    """One request per active user who wants this period's digest."""
    requests = []
    for user_id, timezone in session.execute(_RECIPIENTS[period]):
        start, end = period_bounds(period, slot, timezone)
        requests.append(DigestRequest(user_id=user_id, period=period, period_start=start,
                                      period_end=end, timezone=timezone))
    return requests


def build_digest(session: Session, tenant: uuid.UUID, request: DigestRequest) -> dict[str, int]:
    """Count the tenant's activity by type over the period and record the digest."""
    counts = {
        event_type: n for event_type, n in session.execute(_COUNTS, {
            "tenant": tenant, "start": request.period_start, "end": request.period_end,
        })
    }
    session.execute(_RECORD, {
        "tenant": tenant, "user": request.user_id, "period": request.period,
        "start": request.period_start, "end": request.period_end, "tz": request.timezone,
        "counts": json.dumps(counts), "total": sum(counts.values()),
    })
    return counts
