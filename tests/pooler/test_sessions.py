"""Session features behind a transaction pooler: they use the direct URL, and they work.

The layout of the README's Deployment section: application code, the intake's transactions and actor
sessions through PgBouncer; LISTEN (``wait_for_results``, ``events.listen``, the intake's SSE
feed) on ``app_user``'s direct URL, here derived from the direct owner URL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import get_settings
from app.db.tenant import tenant_session
from app.intake import admin
from app.jobs import enqueue, events, wait_for_results
from tests.intake.conftest import Intake, SSEClient, free_port, make_sender, post_signed
from tests.pooler import actors
from tests.pooler.conftest import Pooled
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.slow

LISTENER = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND usename = 'app_user'
  AND application_name = 'pgjobs-events' AND query ILIKE 'LISTEN%%'
"""


def test_wait_for_results_and_events_listen_use_the_direct_url(
    pooled: Pooled, tmp_path: Path
) -> None:
    db = pooled.db
    tenant = db.create_tenant()
    pooled.start_worker("tests.pooler.actors", log=tmp_path / "worker.log", threads=4)
    heard: list[events.Event] = []
    listening = threading.Event()

    def listen() -> None:
        stream = events.listen(get_settings().app_database_url, timeout=30)
        listening.set()
        for event in stream:
            heard.append(event)
            if sum(e.event == "completed" for e in heard) >= 20:
                return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    listening.wait(10)
    # The LISTEN session is not one of PgBouncer's server connections: it is direct.
    backend = wait_for(lambda: db.scalar(LISTENER), message="events.listen()'s LISTEN")
    assert backend not in {s["remote_pid"] for s in pooled.bouncer.show("SERVERS")}
    with tenant_session(tenant) as session:
        ids = [enqueue(session, actors.record, n).message_id for n in range(20)]
    done = wait_for_results(ids, timeout=60, tenant=tenant)
    assert {job.status for job in done.values()} == {"completed"}
    assert all(job.result["tenant"] == str(tenant) for job in done.values())
    listener.join(timeout=30)
    assert {e.message_id for e in heard if e.event == "completed"} >= set(ids)


@pytest.fixture
def intake_process(pooled: Pooled, tmp_path: Path) -> Iterator[Intake]:
    """``python -m app.intake``: its transactions through PgBouncer, its LISTEN direct."""
    port = free_port()
    log = tmp_path / "intake.log"
    env = pooled.db.env(**pooled.env(INTAKE_PORT=str(port), INTAKE_WORKERS="1"))
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app.intake"], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"intake exited:\n{log.read_text()}")
        try:
            return client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=60, message="the intake process to be ready")
        yield Intake(f"http://127.0.0.1:{port}", client, None)
    finally:
        client.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert "Traceback" not in log.read_text(), log.read_text()


def test_webhook_through_pgbouncer_reaches_the_sse_feed(
    pooled: Pooled, intake_process: Intake, tmp_path: Path
) -> None:
    db = pooled.db
    pooled.start_worker("app.actors", log=tmp_path / "worker.log", threads=2)
    sender = make_sender(db, "test")
    _, token = admin.add_api_token(sender.tenant)
    feed = SSEClient(f"{intake_process.url}/tenants/{sender.tenant}/activity/stream", token)
    try:
        assert feed.status == 200
        for n in range(10):
            reply = post_signed(intake_process, sender, {"event_id": f"pool-{n}",
                                                         "event_type": "ping"})
            assert reply.status_code == 202, reply.text
        wait_for(lambda: sorted(feed.source_ids()) == sorted(f"pool-{n}" for n in range(10)),
                 timeout=60, message="ten activities on the SSE feed")
        again = post_signed(intake_process, sender, {"event_id": "pool-0",
                                                     "event_type": "ping"})
        assert again.status_code == 200  # the duplicate, found through PgBouncer
    finally:
        feed.close()
    statuses: list[Any] = db.query("SELECT DISTINCT status FROM webhook_events")
    assert statuses == [("COMPLETED",)]
    # The intake's and the worker's tenant transactions went through PgBouncer.
    pools = {(p["database"], p["user"]) for p in pooled.bouncer.show("POOLS")}
    assert {(db.name, "app_user"), (db.name, "app_actor")} <= pools
