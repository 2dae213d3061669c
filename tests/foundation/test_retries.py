"""Retries: exponential backoff, then a dead letter that keeps its last error.

Bad input is not retried: a webhook payload that cannot be valid becomes a dead letter at
its first attempt, with an error that names what was wrong.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest

from app.actors import activity, webhooks
from app.db.tenant import tenant_session
from app.jobs import enqueue
from app.jobs.policies import policy_for
from tests.foundation import actors
from tests.foundation.helpers import job_row, runs, state
from tests.support import TestDB, wait_for

#: Scheduling slack: a worker wakes for a due retry within this much of its eta.
SLACK = 1.5


def test_retries_back_off_exponentially_then_dead_letter(
    probes: TestDB, worker: object, caplog: pytest.LogCaptureFixture,
) -> None:
    db = probes
    caplog.set_level(logging.WARNING, logger="pgjobs.events")
    tenant = db.create_tenant()
    with tenant_session(tenant) as session:
        failing = enqueue(session, actors.always_fails, "boom-42").message_id
    wait_for(lambda: state(db, failing) == "rejected", timeout=15,
             message="the failing job to use its 3 attempts")
    attempts = runs(db, failing)
    assert [a for a, _ in attempts] == [1, 2, 3]
    gaps = [(later - earlier).total_seconds()
            for (_, earlier), (_, later) in pairwise(attempts)]
    # min_backoff=200 ms doubling: >= 0.2 s before attempt 2, >= 0.4 s before attempt 3.
    assert gaps[0] >= 0.2 - 0.01 and gaps[1] >= 0.4 - 0.01, gaps
    assert gaps[0] < 0.2 + SLACK and gaps[1] < 0.4 + SLACK, gaps
    # The delays the broker chose double (the observed gaps carry the machine's jitter).
    delays = [float(m.group(1)) for r in caplog.records
              if failing in r.getMessage() and "event=retrying" in r.getMessage()
              for m in [re.search(r"delay=([0-9.]+)", r.getMessage())] if m]
    assert delays == [0.2, 0.4], delays
    print(f"\ngaps between attempts: {gaps[0]:.3f} s, {gaps[1]:.3f} s")
    row = job_row(db, failing)
    assert row["attempts"] == 3 and row["max_attempts"] == 3
    assert row["queue_name"] == "foundation"  # back from its delayed side, not a copy
    assert row["last_error"] == "RuntimeError: always fails: boom-42"
    assert db.scalar("SELECT count(*) FROM dramatiq.queue") == 1


def test_queue_policies_set_max_attempts_on_the_row(db: TestDB, broker: object) -> None:
    tenant = db.create_tenant()
    with tenant_session(tenant) as session:
        hook = enqueue(session, webhooks.process, {"anything": 1}).message_id
        publish = enqueue(session, activity.publish, {"anything": 1}).message_id
    assert job_row(db, hook)["max_attempts"] == 5 == policy_for("webhooks").max_attempts
    assert job_row(db, publish)["max_attempts"] == 3 == policy_for("activity").max_attempts


def _event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"source": "test", "event_id": "e-1", "event_type": "ping",
                            "payload": {}, "received_at": datetime.now(UTC).isoformat()}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


BAD_PAYLOADS = {
    "missing event_id": (_event(event_id=None), ["event_id", "Field required"]),
    "unknown source": (_event(source="carrier-pigeon"),
                       ["UnknownWebhookSource", "unknown webhook source 'carrier-pigeon'"]),
    "bad types": (_event(payload="not a dict", received_at="yesterday"),
                  ["payload", "valid dictionary", "received_at", "datetime"]),
    "unexpected field": (_event(colour="blue"), ["colour", "Extra inputs are not permitted"]),
}


@pytest.mark.parametrize("case", list(BAD_PAYLOADS))
def test_bad_webhook_payload_is_a_dead_letter_at_once(
    db: TestDB, worker: object, case: str
) -> None:
    payload, expected = BAD_PAYLOADS[case]
    tenant = db.create_tenant()
    with tenant_session(tenant) as session:
        bad = enqueue(session, webhooks.process, payload).message_id
    wait_for(lambda: state(db, bad) == "rejected", message=f"the {case} job to be dead-lettered")
    row = job_row(db, bad)
    assert row["attempts"] == 1
    for words in expected:
        assert words in row["last_error"], row["last_error"]
    # Nothing half-done: no activity recorded, no follow-up job.
    assert db.scalar("SELECT count(*) FROM activity_events") == 0
    assert db.scalar("SELECT count(*) FROM dramatiq.queue") == 1
