"""A scheduled message survives a worker restart and a PostgreSQL restart, and is sent once,
at its time. Runs on a private cluster: the shared development server is never restarted."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from app.config import APP_ROLE, role_url
from app.db.engine import sqlalchemy_url
from app.db.tenant import tenant_session
from app.messaging.scheduling import schedule_message
from app.messaging.templates import save_template
from tests.faults.cluster import PrivateCluster
from tests.messaging.conftest import Providers
from tests.messaging.helpers import log_tail, start_worker
from tests.support import wait_for

pytestmark = pytest.mark.slow

LEAD = timedelta(seconds=15)  # long enough for both restarts to happen first


def test_scheduled_message_survives_worker_and_postgres_restarts(
    private_cluster: PrivateCluster, providers: Providers, tmp_path: Path
) -> None:
    db = private_cluster.db
    assert db is not None
    tenant = db.create_tenant("acme")
    engine = create_engine(sqlalchemy_url(role_url(db.owner_url, APP_ROLE,
                                                   "APP_USER_PASSWORD")))
    try:
        providers.configure(tenant, engine=engine)
        due = datetime.now(UTC) + LEAD
        with tenant_session(tenant, engine=engine) as session:
            save_template(session, "wake", body_text="Wake up, {{ who }}")
            message = schedule_message(session, channel="sms", recipient="+15551234001",
                                       template_id="wake", params={"who": "Ann"},
                                       send_at=due)
    finally:
        engine.dispose()

    first = start_worker(db, tmp_path, "first", providers.env(), queues=["messages"])
    first.send_signal(signal.SIGTERM)  # a deploy: graceful stop, then a new process
    assert first.wait(timeout=30) == 0, log_tail(tmp_path / "first.log")
    start_worker(db, tmp_path, "second", providers.env(), queues=["messages"])
    private_cluster.stop()  # every connection cut, as in a restart or failover
    private_cluster.start()
    assert datetime.now(UTC) < due, "the restarts took longer than the lead time"

    try:
        wait_for(lambda: db.scalar("SELECT status FROM scheduled_messages WHERE id = %s",
                                   (message,)) == "sent",
                 timeout=LEAD.total_seconds() + 30, interval=0.1,
                 message="the message to be sent")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(tmp_path / 'second.log')}") from None
    assert len(providers.sms.sent) == 1, log_tail(tmp_path / "second.log")  # once
    (sent,) = providers.sms.sent
    assert sent.recipient == "+15551234001" and sent.text == "Wake up, Ann"
    assert sent.at >= due.timestamp() - 0.005  # not early
    attempts = db.scalar("SELECT attempts FROM dramatiq.queue WHERE actor_name = "
                         "'messages.send'")
    print(f"\nsent {sent.at - due.timestamp():.3f} s after its time, attempts={attempts}")
