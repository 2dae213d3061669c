"""The recurring actors do what their data allows: token refresh, review check, photo requests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app.actors import photos, reviews, tokens
from app.db.tenant import tenant_session
from app.jobs import enqueue
from app.services import tokens as token_service
from tests.support import TestDB, wait_for

SLOT = "2026-11-23T08:00:00+00:00"


def run(db: TestDB, tenant: object, actor: object, **kwargs: object) -> None:
    with tenant_session(tenant) as session:  # type: ignore[arg-type]
        enqueue(session, actor, slot=SLOT, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def test_refresher() -> Iterator[datetime]:
    new_expiry = datetime(2026, 12, 1, tzinfo=UTC)
    token_service.register_refresher("testprov", lambda integration: new_expiry)
    yield new_expiry
    token_service.REFRESHERS.pop("testprov", None)


def test_token_refresh_finds_expiring_tokens_of_its_tenant_only(
    db: TestDB, worker: object, test_refresher: datetime
) -> None:
    a, b = db.create_tenant("a"), db.create_tenant("b")
    slot = datetime.fromisoformat(SLOT)
    soon, later = slot + timedelta(minutes=30), slot + timedelta(days=3)
    db.query("INSERT INTO integrations (tenant_id, provider, access_token_expires_at) VALUES "
             "(%s, 'testprov', %s), (%s, 'google', %s), (%s, 'whatsapp', %s), "
             "(%s, 'testprov', %s) RETURNING 1", (a, soon, a, soon, a, later, b, soon))
    run(db, a, tokens.refresh, window_seconds=3600)
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state IN "
                               "('done', 'rejected')") == 3, message="3 jobs finished")
    status = dict(db.query("SELECT provider, refresh_status FROM integrations "
                           "WHERE tenant_id = %s", (a,)))
    # Refreshed through its provider's refresher; no refresher yet: stays due, dead letter.
    assert status == {"testprov": "ok", "google": "refresh_due", "whatsapp": "ok"}
    assert db.scalar("SELECT access_token_expires_at FROM integrations WHERE tenant_id = %s "
                     "AND provider = 'testprov'", (a,)) == test_refresher
    assert "NoTokenRefresher" in db.scalar(
        "SELECT last_error FROM dramatiq.queue WHERE state = 'rejected'")
    # Tenant b's expiring integration was not touched by a's job.
    assert db.scalar("SELECT refresh_status FROM integrations WHERE tenant_id = %s", (b,)) == "ok"


def test_review_check_flags_low_unreplied_reviews_once(db: TestDB, worker: object) -> None:
    a = db.create_tenant("a")
    db.query("INSERT INTO reviews (tenant_id, source, external_id, rating, replied_at) VALUES "
             "(%s, 'google', 'r1', 2, NULL), (%s, 'google', 'r2', 5, NULL), "
             "(%s, 'google', 'r3', 1, now()) RETURNING 1", (a, a, a))
    run(db, a, reviews.check)
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'done'") == 1,
             message="the check")
    assert db.query("SELECT external_id FROM reviews WHERE flagged_at IS NOT NULL") == [("r1",)]
    assert db.scalar("SELECT title FROM activity_events WHERE event_type = "
                     "'review.needs_reply'") == "1 review(s) need a reply"
    with tenant_session(a) as session:
        enqueue(session, reviews.check, slot="2026-11-23T09:00:00+00:00")
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'done'") == 2,
             message="the second check")
    assert db.scalar("SELECT count(*) FROM activity_events") == 1  # nothing new to flag


def test_photo_request_once_per_stale_location_and_week(db: TestDB, worker: object) -> None:
    a = db.create_tenant("a")
    slot = datetime.fromisoformat(SLOT)
    db.query("INSERT INTO locations (tenant_id, name, last_photo_at) VALUES "
             "(%s, 'stale', %s), (%s, 'fresh', %s), (%s, 'never', NULL) RETURNING 1",
             (a, slot - timedelta(days=30), a, slot - timedelta(days=1), a))
    run(db, a, photos.request)
    run(db, a, photos.request)  # a second run the same week adds nothing
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'done'") == 2,
             message="both runs")
    rows = db.query("SELECT l.name, r.week_start::text, r.status FROM photo_requests r "
                    "JOIN locations l ON l.id = r.location_id ORDER BY 1")
    assert rows == [("never", "2026-11-23", "ready"), ("stale", "2026-11-23", "ready")]
