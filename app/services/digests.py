"""Daily and weekly digests: per user, the tenant's activity counted over the last period.

Periods are whole local days (or Monday-to-Monday weeks) in the user's time zone, else the
tenant's: a digest fired at 07:00 in Tel Aviv covers the previous Tel Aviv day. The digest
is recorded as ``ready`` with a notice: the email (plain text and HTML, template
``digest.daily`` / ``digest.weekly``) that its actor hands to ``notifications.send``, which
marks the digest ``sent`` when the email is out. A digest whose email was handed over is
never rebuilt or sent again, whatever runs twice. RLS keeps every query in the job's tenant.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.messaging import references
from app.messaging.notices import Notice
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
# A digest already handed to the sender is never rewritten (no row comes back, so nothing is
# sent again); a rebuilt ready one gets the fresh counts. The conflict locks the row, so two
# builds of one digest at once are serialised and the second one sees the first's outcome.
_RECORD = text("""
    INSERT INTO digests (tenant_id, user_id, period, period_start, period_end, timezone,
                         counts, total)
    VALUES (:tenant, :user, :period, :start, :end, :tz, CAST(:counts AS jsonb), :total)
    ON CONFLICT (user_id, period, period_start) DO UPDATE
    SET counts = EXCLUDED.counts, total = EXCLUDED.total
    WHERE digests.status = 'ready' AND digests.notification_job_id IS NULL
    RETURNING id""")
_USER = text("SELECT email, name FROM users WHERE id = :user AND active")
_USER_ZONE = text("""
    SELECT coalesce(u.timezone, t.timezone) FROM users u JOIN tenants t ON t.id = u.tenant_id
    WHERE u.id = :user AND u.active""")
_HANDED = text("UPDATE digests SET notification_job_id = :job WHERE id = :id")
_NOT_SENT = text("UPDATE digests SET status = 'failed' WHERE id = :id")


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


@dataclass(frozen=True)
class Digest:
    counts: dict[str, int]
    #: The email to send; None when this digest was already handed over (or the user left).
    notice: Notice | None
    digest_id: uuid.UUID | None = None


def user_timezone(session: Session, user_id: uuid.UUID) -> str | None:
    """The user's zone, else the tenant's; None when the tenant has no such active user."""
    zone: str | None = session.execute(_USER_ZONE, {"user": user_id}).scalar()
    return zone


def build_digest(session: Session, tenant: uuid.UUID, request: DigestRequest) -> Digest:
    """Count the tenant's activity by type over the period, record the digest and say what
    to send (once per user and period)."""
    counts = {
        event_type: n for event_type, n in session.execute(_COUNTS, {
            "tenant": tenant, "start": request.period_start, "end": request.period_end,
        })
    }
    digest_id = session.execute(_RECORD, {
        "tenant": tenant, "user": request.user_id, "period": request.period,
        "start": request.period_start, "end": request.period_end, "tz": request.timezone,
        "counts": json.dumps(counts), "total": sum(counts.values()),
    }).scalar()
    user = session.execute(_USER, {"user": request.user_id}).one_or_none()
    if digest_id is None or user is None:
        return Digest(counts, None)
    zone = tenant_zone(request.timezone)
    params = {
        "name": user.name, "period": request.period, "timezone": request.timezone,
        "start": request.period_start.astimezone(zone).date().isoformat(),
        "end": (request.period_end.astimezone(zone) - timedelta(seconds=1)).date().isoformat(),
        "counts": counts, "total": sum(counts.values()),
    }
    notice = Notice("email", user.email, f"digest.{request.period}", params,
                    unique_key=f"digest-email:{digest_id}",
                    reference=references.digest(digest_id))
    return Digest(counts, notice, digest_id)


def handed_over(session: Session, digest_id: uuid.UUID, job_id: str) -> None:
    """The digest's email is now a ``notifications.send`` job: never build or send it again."""
    session.execute(_HANDED, {"id": digest_id, "job": uuid.UUID(job_id)})


def not_sent(session: Session, digest_id: uuid.UUID) -> None:
    """The digest cannot be emailed (e.g. the user's address is unusable)."""
    session.execute(_NOT_SENT, {"id": digest_id})
