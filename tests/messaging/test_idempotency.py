"""Never sent twice: a worker SIGKILLed right after the provider accepted a message.

The fake provider (or SMTP server) kills the worker's whole process group the moment it has
accepted the message, before its answer goes out: the attempt dies knowing nothing, with
its ``sending`` record committed. A second worker rescues the job and reconciles instead of
sending blindly: it asks the SMS provider about the key (lookup), lets the WhatsApp gateway
drop the repeated key (dedupe), and leaves the email ``unknown`` (SMTP cannot be asked).
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.db.tenant import tenant_session
from app.messaging import deliveries
from app.messaging.notify import notify
from app.messaging.templates import save_template
from tests.messaging.conftest import Providers
from tests.messaging.helpers import delivery, job, job_state, kill, start_worker
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow  # real worker processes, killed


def kill_on_accept(fake: Any, victim: Any) -> threading.Event:
    """Arm ``fake`` to SIGKILL ``victim`` right after accepting the next message (once)."""
    killed = threading.Event()

    def accept(_: object) -> None:
        fake.on_accept = None
        kill(victim)
        killed.set()

    fake.on_accept = accept
    return killed


def enqueue(tenant: uuid.UUID, channel: str, recipient: str) -> str:
    with tenant_session(tenant) as session:
        save_template(session, "code", subject="Your code", body_text="Your code is {{ code }}")
        return notify(session, channel, recipient, "code", {"code": "4242"}).message_id


def crash_after_acceptance(db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path,
                           fake: Any, channel: str, recipient: str) -> str:
    victim = start_worker(db, tmp_path, "victim", providers.env())
    killed = kill_on_accept(fake, victim)
    job_id = enqueue(tenant, channel, recipient)
    wait_for(killed.is_set, message="the provider to accept and the worker to die")
    row = delivery(db, job_id)
    assert row and row["status"] == "sending" and row["attempts"] == 1
    assert job_state(db, job_id) == "consumed"  # held by the dead worker
    start_worker(db, tmp_path, "rescuer", providers.env())
    return job_id


def test_sms_accepted_then_worker_killed_is_reconciled_by_lookup_not_resent(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    job_id = crash_after_acceptance(db, providers, tenant, tmp_path, providers.sms, "sms",
                                    "+15551231001")
    wait_for(lambda: job_state(db, job_id) == "done", timeout=30,
             message="the rescued job to finish")
    assert len(providers.sms.sent) == 1  # reached once
    methods = [r.method for r in providers.sms.requests]
    assert methods == ["POST", "GET"]  # the retry asked, it did not send
    row = delivery(db, job_id)
    assert row and row["status"] == "sent" and row["attempts"] == 2
    assert row["provider_message_id"] == providers.sms.sent[0].message_id
    assert "reconciled" in row["error"]
    assert job(db, job_id)["attempts"] == 2


def test_whatsapp_accepted_then_worker_killed_is_deduplicated_by_the_provider(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    job_id = crash_after_acceptance(db, providers, tenant, tmp_path, providers.whatsapp,
                                    "whatsapp", "+15551231002")
    wait_for(lambda: job_state(db, job_id) == "done", timeout=30,
             message="the rescued job to finish")
    assert len(providers.whatsapp.sent) == 1  # sent once
    first, again = providers.whatsapp.sends()
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"] == job_id
    row = delivery(db, job_id)
    assert row and row["status"] == "sent" and row["attempts"] == 2
    assert row["provider_message_id"] == providers.whatsapp.sent[0].message_id
    assert row["error"] == "the provider already had this key"


def test_email_accepted_then_worker_killed_is_left_unknown_not_resent(
    db: TestDB, providers: Providers, tenant: uuid.UUID, tmp_path: Path
) -> None:
    job_id = crash_after_acceptance(db, providers, tenant, tmp_path, providers.smtp, "email",
                                    "carol@example.test")
    wait_for(lambda: job_state(db, job_id) == "rejected", timeout=30,
             message="the rescued job to stop")
    assert len(providers.smtp.received()) == 1  # never sent a second time
    row = delivery(db, job_id)
    assert row and row["status"] == "unknown" and row["attempts"] == 2
    assert "cannot be asked; not sent again" in row["error"]
    assert "cannot be asked; not sent again" in job(db, job_id)["last_error"]

    # The tenant checked with the recipient: it arrived. The ledger says so from now on.
    with tenant_session(tenant) as session:
        assert deliveries.resolve_unknown(session, row["id"], sent=True) is True
        assert deliveries.resolve_unknown(session, row["id"], sent=True) is False
        settled = deliveries.get(session, row["id"])
    assert settled is not None and settled.status == "sent"
