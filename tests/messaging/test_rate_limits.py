"""Per-channel rate limits on notifications: the limit key is the channel, so a burst of SMS
waits its turn in the table without holding back the tenant's email."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from app.db.tenant import tenant_session
from app.messaging.notify import notify
from app.messaging.templates import save_template
from tests.messaging.conftest import Providers
from tests.messaging.helpers import start_worker
from tests.support import TestDB, wait_for

RATE = {"MESSAGING_RATE_LIMIT": "2/1"}  # 2 sends per second per key


def burst(tenant: uuid.UUID, sms: int, emails: int, prefix: str = "+1555400") -> None:
    with tenant_session(tenant) as session:
        save_template(session, "burst", subject="Burst", body_text="message {{ i }}")
        for i in range(sms):
            notify(session, "sms", f"{prefix}{i:04d}", "burst", {"i": i})
        for i in range(emails):
            notify(session, "email", f"user{i}@example.test", "burst", {"i": i})


def test_the_limit_key_of_a_notification_is_its_channel(
    db: TestDB, providers: Providers, tenant: uuid.UUID
) -> None:
    burst(tenant, 1, 1)
    # Scoped to the job's tenant by the database: no tenant spends another's budget.
    assert sorted(db.query("SELECT limit_key FROM dramatiq.queue")) == [
        (f"{tenant}/email",), (f"{tenant}/sms",)]


@pytest.mark.slow
def test_an_sms_burst_is_paced_and_does_not_hold_back_email(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    burst(tenant, 6, 2)
    start_worker(db, tmp_path, "worker", {**providers.env(), **RATE})
    wait_for(lambda: len(providers.sms.sent) == 6 and len(providers.smtp.received()) == 2,
             timeout=30, message="every message")
    sms_times = sorted(s.at for s in providers.sms.sent)
    # 6 starts at 2 per one-second window need three windows: the last starts more than a
    # whole window after the first (fixed windows: the first two may open one's very end).
    assert sms_times[-1] - sms_times[0] >= 1.0 * 0.9
    delivered = db.query("SELECT channel, sent_at FROM deliveries ORDER BY sent_at")
    email_done = max(t for c, t in delivered if c == "email")
    sms_done = max(t for c, t in delivered if c == "sms")
    assert email_done < sms_done  # email went out while SMS still waited for its slots


@pytest.mark.slow
def test_one_tenants_sms_burst_does_not_slow_another_tenants_sms(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    other = db.create_tenant("other")
    providers.configure(other)
    burst(tenant, 8, 0)
    burst(other, 2, 0, prefix="+1555401")
    start_worker(db, tmp_path, "worker", {**providers.env(), **RATE})
    wait_for(lambda: len(providers.sms.sent) == 10, timeout=30, message="every SMS")
    others = [s.at for s in providers.sms.sent if s.recipient.startswith("+1555401")]
    first = min(s.at for s in providers.sms.sent)
    assert max(others) - first < 1.0  # served in the first window, beside the flood
