"""End to end with real processes: ``python -m app.intake`` (2 uvicorn workers), a
``dramatiq`` worker process, an SSE client and the ``pgjobs`` CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.intake import admin
from tests.intake.conftest import Intake, SSEClient, free_port, make_sender, post_signed
from tests.support import ROOT, TestDB, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def intake_process(db: TestDB, tmp_path: Path) -> Iterator[Intake]:
    port = free_port()
    log = tmp_path / "intake.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.intake"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            env=db.env(INTAKE_PORT=str(port), INTAKE_WORKERS="2"), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, timeout=20)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"intake exited:\n{log.read_text()}")
        try:
            return client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=60, message="the intake process to be ready")
        yield Intake(url, client, None)
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


def status(db: TestDB, event_id: str) -> tuple[str, str | None] | None:
    rows = db.query("SELECT status, error FROM webhook_events WHERE id = %s", (event_id,))
    return rows[0] if rows else None


def test_webhook_to_worker_to_activity_to_sse_then_failure_and_replay(
    db: TestDB, intake_process: Intake, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.touch()
    db.start_worker("tests.intake.handlers", log=tmp_path / "worker.log",
                    INTAKE_TEST_BROKEN=str(broken), INTAKE_TEST_MODE="permanent")
    sender = make_sender(db, "test")
    _, api_token = admin.add_api_token(sender.tenant)
    feed = SSEClient(f"{intake_process.url}/tenants/{sender.tenant}/activity/stream", api_token)
    try:
        assert feed.status == 200
        reply = post_signed(intake_process, sender, {"event_id": "e2e-1", "event_type": "ping"})
        assert reply.status_code == 202, reply.text
        event_id = reply.json()["id"]
        wait_for(lambda: "e2e-1" in feed.source_ids(), timeout=30,
                 message="the SSE client to receive the activity")
        assert status(db, event_id) == ("COMPLETED", None)
        (event,) = [e for e in feed.events if e["data"]["source_id"] == "e2e-1"]
        assert event["data"]["event_type"] == "webhook.test" and event["id"].isdigit()
        # The activity row is the tenant's, under its RLS.
        assert db.query("SELECT tenant_id FROM activity_events WHERE source_id = 'e2e-1'") == [
            (sender.tenant,)]

        # A failing handler: FAILED with its error, dead, then replayed from the CLI.
        icount = make_sender(db, "icount", tenant=sender.tenant)
        failing = post_signed(intake_process, icount, {"event_id": "doc-9"}).json()["id"]
        wait_for(lambda: status(db, failing) == ("FAILED",
                                                 "PayloadError: icount refused document doc-9"),
                 timeout=30, message="the failing event to be FAILED")
        broken.unlink()
        replay = subprocess.run([sys.executable, "-m", "app.ops", "webhooks", "replay", failing],
                                cwd=ROOT, env=db.env(), capture_output=True, text=True,
                                timeout=60)
        assert replay.returncode == 0, replay.stderr
        wait_for(lambda: status(db, failing) == ("COMPLETED", None), timeout=30,
                 message="the replayed event to complete")
        wait_for(lambda: "doc-9" in feed.source_ids(), timeout=30,
                 message="the replayed event's activity on the feed")
    finally:
        feed.close()
    metrics = intake_process.client.get("/metrics").text
    assert 'pgjobs_intake_requests_total{source="test",status="202"}' in metrics
