"""Rows written behind the API's back (a bug elsewhere, a hand-made INSERT by an operator)
that carry options the broker would act on later: refused at claim, never run, never
enqueue anything.

dramatiq's pipelines and callbacks enqueue the next message from options stored in the
row. A tenant's data must never steer that, so those options are refused on every path:
at enqueue (the API and the database's insert path, tests in this folder) and here, at
claim, for a row that got in anyway.
"""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq
import pytest
from dramatiq import Message
from psycopg.types.json import Jsonb

from tests.isolation import actors
from tests.isolation.conftest import Victim
from tests.support import TestDB, wait_for

FORGED = {
    "pipe_target": lambda b: {"queue_name": actors.QUEUE, "actor_name": "isolation.mark",
                              "args": ["piped"], "kwargs": {}, "options": {"tenant_id": b},
                              "message_id": str(uuid.uuid4()), "message_timestamp": 0},
    "on_success": lambda b: "isolation.mark",
    "on_failure": lambda b: "isolation.mark",
    "tenant_id": lambda b: b,
}


@pytest.mark.parametrize("option", sorted(FORGED))
def test_a_forged_re_enqueue_option_never_runs(
    db: TestDB, attacker: uuid.UUID, victim: Victim, isolation_worker: dramatiq.Worker,
    option: str,
) -> None:
    b = str(victim.tenant)
    body: dict[str, Any] = Message(queue_name=actors.QUEUE, actor_name="isolation.mark",
                                   args=("host",), kwargs={},
                                   options={option: FORGED[option](b)}).asdict()
    with db.owner() as conn:
        conn.execute(
            "INSERT INTO dramatiq.queue (message_id, queue_name, state, message, tenant_id, "
            "actor_name) VALUES (%s, %s, 'queued', %s, %s, 'isolation.mark')",
            (body["message_id"], actors.QUEUE, Jsonb(body), attacker))
        conn.execute(f"NOTIFY \"dramatiq.{actors.QUEUE}.enqueue\"")

    def dead() -> str | None:
        row = db.query('SELECT "state"::text, last_error FROM dramatiq.queue '
                       "WHERE message_id = %s", (body["message_id"],))
        return row[0][1] if row and row[0][0] == "rejected" else None

    error = wait_for(dead, timeout=20, message="the forged row to be dead-lettered")
    assert f"carries the option {option!r}, which is refused" in error
    # Neither the forged row nor anything it named ran, and nothing new was enqueued.
    assert db.scalar("SELECT count(*) FROM isolation_runs") == 0
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE actor_name = 'isolation.mark'"
                     ) == 1
