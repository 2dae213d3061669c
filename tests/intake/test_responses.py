"""Every answer the intake gives, and that no refusal leaves a row or a job behind."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from tests.intake.conftest import Intake, counts, make_sender, post_signed
from tests.support import TestDB


def test_accepted_202_stores_the_event_and_its_job_in_one_go(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db)
    reply = post_signed(intake, sender, {"event_id": "evt-1", "event_type": "ping", "n": 1})
    assert reply.status_code == 202, reply.text
    event_id = reply.json()["id"]
    row = db.query("SELECT tenant_id, source, external_event_id, event_type, status, payload, "
                   "job_id, endpoint_id, headers ? 'x-webhook-signature', raw_body IS NOT NULL "
                   "FROM webhook_events WHERE id = %s", (event_id,))
    assert row == [(sender.tenant, "test", "evt-1", "ping", "ENQUEUED",
                    {"event_id": "evt-1", "event_type": "ping", "n": 1},
                    row[0][6], sender.endpoint_id, True, True)]
    job = db.query("SELECT actor_name, tenant_id, message->'args' FROM dramatiq.queue "
                   "WHERE message_id = %s", (row[0][6],))
    assert job == [("webhooks.process", sender.tenant, [{"webhook_event_id": event_id}])]


def test_duplicate_200_enqueues_nothing(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db)
    assert post_signed(intake, sender, {"event_id": "evt-1"}).status_code == 202
    again = post_signed(intake, sender, {"event_id": "evt-1", "changed": True})
    assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert counts(db) == {"webhook_events": 1, "jobs": 1, "activity_events": 0}


def test_malformed_bodies_400_name_what_is_wrong(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db)
    carrier = make_sender(db, "carrier")
    cases = [
        (sender, b'{"event_id": "x",', "body is not valid JSON"),
        (sender, b"[1, 2]", "body must be a JSON object, got a JSON list"),
        (sender, b"", "empty body"),
        (sender, {"n": 1}, "missing event id"),
        (carrier, {"event_id": "c-1", "status": "delivered"}, "tracking_number: Field required"),
    ]
    for who, body, words in cases:
        reply = post_signed(intake, who, body)
        assert reply.status_code == 400, (body, reply.text)
        assert reply.json()["error"] == "malformed_body"
        assert words in reply.json()["detail"], reply.json()
    # The error names the field, never the value sent.
    secret_value = "4111-1111-1111-1111"
    reply = post_signed(intake, carrier, {"event_id": "c-2", "status": "x",
                                          "tracking_number": {"card": secret_value}})
    assert reply.status_code == 400 and secret_value not in reply.text
    assert counts(db) == {"webhook_events": 0, "jobs": 0, "activity_events": 0}


def test_bad_or_missing_signature_401(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db)
    bad = post_signed(intake, sender, {"event_id": "e"}, secret="not-the-secret")
    assert bad.status_code == 401 and bad.json()["error"] == "bad_signature"
    missing = intake.client.post(sender.path, content=b'{"event_id": "e"}',
                                 headers={"content-type": "application/json"})
    assert missing.status_code == 401 and missing.json()["error"] == "missing_signature"
    assert "x-webhook-signature" in missing.json()["detail"]
    assert counts(db) == {"webhook_events": 0, "jobs": 0, "activity_events": 0}


def test_unknown_source_or_tenant_404(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db)
    unknown_source = post_signed(intake, sender, {"event_id": "e"},
                                 path=f"/webhooks/pigeon/{sender.token}")
    assert unknown_source.status_code == 404
    assert unknown_source.json()["error"] == "unknown_source"
    assert "'pigeon'" in unknown_source.json()["detail"]
    unknown_token = post_signed(intake, sender, {"event_id": "e"}, path="/webhooks/test/nope")
    assert unknown_token.status_code == 404 and unknown_token.json()["error"] == "unknown_tenant"
    no_token = post_signed(intake, sender, {"event_id": "e"}, path="/webhooks/test")
    assert no_token.status_code == 404 and "no endpoint token" in no_token.json()["detail"]
    # A token opens its own source only.
    other_source = post_signed(intake, sender, {"event_id": "e"},
                               path=f"/webhooks/voicenter/{sender.token}")
    assert other_source.status_code == 404
    # The token may also come in a header.
    header = post_signed(intake, sender, {"event_id": "e"}, path="/webhooks/test",
                         headers={"X-Webhook-Token": sender.token})
    assert header.status_code == 202
    assert counts(db)["webhook_events"] == 1


def test_inactive_tenant_is_unknown(db: TestDB, intake: Intake) -> None:
    tenant = db.create_tenant("sleeping", active=False)
    sender = make_sender(db, tenant=tenant)
    assert post_signed(intake, sender, {"event_id": "e"}).status_code == 404


def test_wrong_content_type_415(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db)
    reply = post_signed(intake, sender, {"event_id": "e"}, headers={"content-type": "text/xml"})
    assert reply.status_code == 415 and "'text/xml'" in reply.json()["detail"]
    none = intake.client.post(sender.path, content=b"{}", headers={"content-type": ""})
    assert none.status_code == 415
    assert counts(db)["webhook_events"] == 0


def test_too_large_413_before_the_body_is_read(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db)
    limit = intake.state.settings.max_body_bytes
    host, port = urlsplit(intake.url).hostname, urlsplit(intake.url).port
    assert host and port
    # Only the headers are sent: the answer comes without the 100 MB body.
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall((f"POST {sender.path} HTTP/1.1\r\nHost: x\r\n"
                      "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
                      ).encode())
        answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413"), answer
    # A chunked body with no declared length is cut off as soon as it crosses the limit.
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"event_id": "big", "pad": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'
    reply = intake.client.post(sender.path, content=chunks(),
                               headers={"content-type": "application/json",
                                        "X-Webhook-Signature": "sha256=00"})
    assert reply.status_code == 413 and reply.json()["error"] == "too_large"
    assert counts(db)["webhook_events"] == 0


def test_refusals_are_counted_per_source_and_reason(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db)
    post_signed(intake, sender, {"event_id": "e"}, secret="wrong")
    post_signed(intake, sender, {"event_id": "e"})
    text = intake.client.get("/metrics").text
    assert 'pgjobs_intake_refusals_total{reason="bad_signature",source="test"}' in text
    assert 'pgjobs_intake_requests_total{source="test",status="202"}' in text
    assert 'pgjobs_intake_request_seconds_bucket{le="0.001",source="test",status="401"}' in text
