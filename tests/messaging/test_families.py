"""The weekly photo request and the hourly review check send their messages through
notifications.send: WhatsApp to an owner with a phone, email to one without, once each."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from app.actors import photos, reviews
from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.messaging.conftest import Providers
from tests.messaging.helpers import start_worker
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow

SLOT = "2026-11-23T10:00:00+00:00"  # a Monday


def owners(db: TestDB, tenant: uuid.UUID) -> None:
    db.query("INSERT INTO users (tenant_id, email, name, phone, is_owner) VALUES "
             "(%s, 'olga@example.test', 'Olga', '+15551236001', true), "
             "(%s, 'omar@example.test', 'Omar', NULL, true), "
             "(%s, 'staff@example.test', 'Staff', '+15551236009', false) RETURNING 1",
             (tenant, tenant, tenant))


def settled(db: TestDB) -> bool:
    return db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state IN "
                     "('queued', 'consumed')") == 0


def test_photo_requests_reach_each_owner_once_and_are_marked_sent(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    owners(db, tenant)
    slot = datetime.fromisoformat(SLOT)
    db.query("INSERT INTO locations (tenant_id, name, last_photo_at) VALUES "
             "(%s, 'Main St', %s), (%s, 'Harbour', NULL), (%s, 'Fresh', %s) RETURNING 1",
             (tenant, slot - timedelta(days=30), tenant, tenant, slot))
    start_worker(db, tmp_path, "worker", providers.env())
    for _ in range(2):  # the second run of the week finds nothing new to ask for
        with tenant_session(tenant) as session:
            enqueue(session, photos.request, SLOT)
        wait_for(lambda: settled(db), message="the photo request and its messages")

    (chat,) = providers.whatsapp.sent
    assert chat.recipient == "+15551236001"
    assert chat.text.startswith("Hi Olga, time for new photos of Harbour, Main St.")
    (mail,) = providers.smtp.received()
    assert mail.recipients == ["omar@example.test"]
    assert mail.message["Subject"] == "New photos for 2 location(s)?"
    assert sorted(db.query("SELECT status FROM photo_requests")) == [("sent",), ("sent",)]


def test_review_check_tells_each_owner_once(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    owners(db, tenant)
    db.query("INSERT INTO reviews (tenant_id, source, external_id, rating) VALUES "
             "(%s, 'google', 'r1', 1), (%s, 'google', 'r2', 2), (%s, 'google', 'r3', 5) "
             "RETURNING 1", (tenant, tenant, tenant))
    start_worker(db, tmp_path, "worker", providers.env())
    with tenant_session(tenant) as session:
        enqueue(session, reviews.check, SLOT)
        enqueue(session, reviews.check, "2026-11-23T11:00:00+00:00")  # the next hour
    wait_for(lambda: settled(db) and len(providers.whatsapp.sent) == 1,
             message="the checks and their messages")
    (chat,) = providers.whatsapp.sent
    assert chat.text == "2 new review(s) rated 3 or less still need a reply."
    (mail,) = providers.smtp.received()
    assert mail.message["Subject"] == "2 review(s) need a reply"
    assert db.scalar("SELECT count(*) FROM deliveries WHERE status = 'sent'") == 2
