"""``webhooks.process`` on stored events: COMPLETED, FAILED with the error, retried, replayed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest

from tests.intake import handlers  # noqa: F401  (registers the flaky icount handler)
from tests.intake.conftest import Intake, make_sender, post_signed
from tests.support import ROOT, TestDB, wait_for


@pytest.fixture
def worker(broker: dramatiq.Broker) -> Iterator[dramatiq.Worker]:
    w = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    w.start()
    yield w
    w.stop(timeout=10_000)


def status(db: TestDB, event_id: str) -> tuple[str, str | None, int]:
    rows = db.query("SELECT status, error, attempts FROM webhook_events WHERE id = %s",
                    (event_id,))
    return rows[0] if rows else ("missing", None, 0)


def test_a_stored_event_is_completed_with_its_activity(
    db: TestDB, intake: Intake, worker: dramatiq.Worker
) -> None:
    sender = make_sender(db, "voicenter")
    reply = post_signed(intake, sender, {"event_id": "call-1", "event_type": "call.ended"})
    event_id = reply.json()["id"]
    wait_for(lambda: status(db, event_id)[0] == "COMPLETED", message="the event to complete")
    assert status(db, event_id) == ("COMPLETED", None, 1)
    activity = db.query("SELECT tenant_id, event_type, source_id, metadata->>'webhook_event_id' "
                        "FROM activity_events")
    assert activity == [(sender.tenant, "webhook.voicenter", "call-1", event_id)]


def test_a_failed_attempt_is_recorded_then_the_retry_completes(
    db: TestDB, intake: Intake, worker: dramatiq.Worker, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = tmp_path / "broken"
    broken.touch()
    monkeypatch.setenv("INTAKE_TEST_BROKEN", str(broken))
    sender = make_sender(db, "icount")
    event_id = post_signed(intake, sender, {"event_id": "doc-1"}).json()["id"]
    wait_for(lambda: status(db, event_id)[0] == "FAILED", message="the attempt to fail")
    assert status(db, event_id) == ("FAILED", "RuntimeError: icount API unavailable", 1)
    assert db.scalar("SELECT count(*) FROM activity_events") == 0  # rolled back
    broken.unlink()  # upstream fixed: the retry (1 s backoff) goes through PROCESSING again
    wait_for(lambda: status(db, event_id)[0] == "COMPLETED", message="the retry to complete")
    assert status(db, event_id) == ("COMPLETED", None, 2)


def cli(db: TestDB, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.ops", *args], cwd=ROOT, env=db.env(),
                          capture_output=True, text=True, timeout=60)


def test_a_dead_event_is_replayed_from_the_cli(
    db: TestDB, intake: Intake, worker: dramatiq.Worker, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = tmp_path / "broken"
    broken.touch()
    monkeypatch.setenv("INTAKE_TEST_BROKEN", str(broken))
    monkeypatch.setenv("INTAKE_TEST_MODE", "permanent")
    sender = make_sender(db, "icount")
    event_id = post_signed(intake, sender, {"event_id": "doc-2"}).json()["id"]
    job_id = db.scalar("SELECT job_id FROM webhook_events WHERE id = %s", (event_id,))
    wait_for(lambda: db.scalar('SELECT "state"::text FROM dramatiq.queue WHERE message_id = %s',
                               (job_id,)) == "rejected", message="the job to be dead-lettered")
    assert status(db, event_id) == ("FAILED", "PayloadError: icount refused document doc-2", 1)
    listed = cli(db, "webhooks", "list", "--status", "FAILED", "--json")
    assert listed.returncode == 0 and event_id in listed.stdout
    completed_before = cli(db, "webhooks", "replay", str(db.scalar("SELECT gen_random_uuid()")))
    assert completed_before.returncode == 3 and "no webhook event" in completed_before.stderr

    broken.unlink()
    replayed = cli(db, "webhooks", "replay", event_id)
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed {event_id} (was FAILED)" in replayed.stdout
    wait_for(lambda: status(db, event_id)[0] == "COMPLETED", message="the replay to complete")
    assert status(db, event_id) == ("COMPLETED", None, 2)
    new_job = db.scalar("SELECT job_id FROM webhook_events WHERE id = %s", (event_id,))
    assert new_job != job_id
    assert db.query("SELECT tenant_id FROM dramatiq.queue WHERE message_id = %s",
                    (new_job,)) == [(sender.tenant,)]
    again = cli(db, "webhooks", "replay", event_id)
    assert again.returncode == 4 and "COMPLETED already" in again.stderr
