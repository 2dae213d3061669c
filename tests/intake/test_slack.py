"""``/slack/events`` and ``/slack/interactivity``: the registry, retries, interactivity forms."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy.orm import Session

from app.actors.activity import publish
from app.intake import signatures
from app.intake.slack import SLACK_HANDLERS, SlackEvent, register_slack_handler
from app.jobs import enqueue
from tests.intake.conftest import Intake, Sender, make_sender
from tests.support import TestDB

SEEN: list[SlackEvent] = []


@pytest.fixture
def mention_handler() -> Iterator[None]:
    # The assistant handles mentions in the product; this test puts its own handler in.
    product = SLACK_HANDLERS.pop("app_mention", None)

    @register_slack_handler("app_mention")
    def on_mention(session: Session, event: SlackEvent) -> None:
        SEEN.append(event)
        if event.payload["event"].get("text") == "boom":
            raise RuntimeError("handler bug")
        enqueue(session, publish, {"tenant_id": str(event.tenant_id), "event_type": "slack",
                                   "title": "mentioned", "source": "slack",
                                   "source_id": event.event_id})

    SEEN.clear()
    yield
    SLACK_HANDLERS.pop("app_mention", None)
    if product is not None:
        SLACK_HANDLERS["app_mention"] = product


def post(intake: Intake, sender: Sender, body: bytes, *, path: str = "/slack/events",
         content_type: str = "application/json", **headers: str) -> httpx.Response:
    ts = str(int(time.time()))
    return intake.client.post(path, content=body, headers={
        "content-type": content_type, "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signatures.sign_slack(sender.secret, body, ts), **headers})


def callback(event_id: str, kind: str, text: str = "hi") -> bytes:
    return json.dumps({"type": "event_callback", "team_id": "T0ACME", "event_id": event_id,
                       "event": {"type": kind, "text": text}}).encode()


def test_a_registered_kind_is_handled_in_the_intake_transaction(
    db: TestDB, intake: Intake, mention_handler: None
) -> None:
    sender = make_sender(db, "slack", key="T0ACME")
    assert post(intake, sender, callback("Ev1", "app_mention")).status_code == 202
    assert [(e.kind, e.event_id, e.team_id, e.tenant_id) for e in SEEN] == [
        ("app_mention", "Ev1", "T0ACME", sender.tenant)]
    row = db.query("SELECT id, status, job_id FROM webhook_events")
    assert row[0][1:] == ("COMPLETED", None) and SEEN[0].webhook_event_id == row[0][0]
    # The handler's job committed with the row; no webhooks.process job.
    assert db.query("SELECT actor_name, tenant_id FROM dramatiq.queue") == [
        ("activity.publish", sender.tenant)]
    # Slack's retry of the same event: 200, nothing new.
    retry = post(intake, sender, callback("Ev1", "app_mention"), **{"X-Slack-Retry-Num": "1"})
    assert retry.status_code == 200 and retry.json() == {"status": "duplicate"}
    assert len(SEEN) == 1 and db.scalar("SELECT count(*) FROM dramatiq.queue") == 1


def test_a_kind_without_handler_goes_to_webhooks_process(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db, "slack", key="T0ACME")
    assert post(intake, sender, callback("Ev2", "reaction_added")).status_code == 202
    assert db.query("SELECT source, event_type, status FROM webhook_events") == [
        ("slack", "reaction_added", "ENQUEUED")]
    assert db.query("SELECT actor_name FROM dramatiq.queue") == [("webhooks.process",)]


def test_a_failing_handler_leaves_a_failed_event_and_no_job(
    db: TestDB, intake: Intake, mention_handler: None
) -> None:
    sender = make_sender(db, "slack", key="T0ACME")
    reply = post(intake, sender, callback("Ev3", "app_mention", text="boom"))
    assert reply.status_code == 202
    assert db.query("SELECT status, error FROM webhook_events") == [
        ("FAILED", "RuntimeError: handler bug")]
    assert db.scalar("SELECT count(*) FROM dramatiq.queue") == 0


def test_interactivity_form_payload(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db, "slack", key="T0ACME")
    payload = {"type": "block_actions", "team": {"id": "T0ACME"}, "trigger_id": "tr-1",
               "actions": [{"action_id": "approve"}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    reply = post(intake, sender, body, path="/slack/interactivity",
                 content_type="application/x-www-form-urlencoded")
    assert reply.status_code == 200 and reply.json() == {"status": "accepted"}
    assert db.query("SELECT external_event_id, event_type, payload->'actions' "
                    "FROM webhook_events") == [("tr-1", "block_actions",
                                                [{"action_id": "approve"}])]
    no_payload = post(intake, sender, b"foo=bar", path="/slack/interactivity",
                      content_type="application/x-www-form-urlencoded")
    assert no_payload.status_code == 400 and "'payload'" in no_payload.json()["detail"]


def test_unknown_team_404_and_registry_errors(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db, "slack", key="T0ACME")
    other = json.dumps({"type": "event_callback", "team_id": "T0OTHER", "event_id": "E",
                        "event": {"type": "message"}}).encode()
    assert post(intake, sender, other).status_code == 404
    with pytest.raises(ValueError, match="type name"):
        register_slack_handler("not a kind!")
    assert uuid.UUID(str(sender.tenant))
