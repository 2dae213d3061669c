"""Real ``python -m app.scheduler`` processes on a per-second cron, and what they enqueued."""

from __future__ import annotations

import itertools
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

from tests.support import ROOT, TestDB

#: Fast motion: definitions re-read and standbys retrying twice a second.
FAST = {"SCHEDULER_SYNC_SECONDS": "0.5", "SCHEDULER_LOCK_RETRY_SECONDS": "0.5"}


def start_scheduler(db: TestDB, log: Path, **env: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.scheduler"], cwd=ROOT, env=db.env(**{**FAST, **env}),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    db.procs.append(proc)  # SIGKILLed at teardown if still running
    return proc


def only_test_schedule(db: TestDB, cron: str = "* * * * * *", policy: str = "catch_up",
                       catch_up_max: int = 60, enabled: bool = True) -> None:
    """Built-ins off; ``test.tick`` fires ``reviews.check`` (harmless: no worker runs it)."""
    db.query("UPDATE scheduler.recurring SET enabled = false RETURNING 1")
    db.query(
        "INSERT INTO scheduler.recurring (task, actor_name, cron, timezone, enabled, "
        "misfire_policy, catch_up_max) VALUES ('test.tick', 'reviews.check', %s, 'UTC', %s, "
        "%s, %s) RETURNING 1", (cron, enabled, policy, catch_up_max),
    )


def slots_by_tenant(db: TestDB, task: str = "test.tick") -> dict[uuid.UUID, list[datetime]]:
    """Every enqueued slot per tenant (duplicates kept, so a test can see them)."""
    rows = db.query(
        "SELECT tenant_id, (message->'kwargs'->>'slot')::timestamptz FROM dramatiq.queue "
        "WHERE unique_key LIKE %s ORDER BY 1, 2", (f"{task}:%",),
    )
    out: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for tenant, slot in rows:
        out[tenant].append(slot)
    return dict(out)


def leader_pid(db: TestDB) -> int | None:
    return db.scalar("SELECT leader_pid FROM scheduler.health "
                     "WHERE leader_heartbeat_at > now() - interval '3 seconds'")




def assert_contiguous_once(slots: list[datetime], minimum: int) -> None:
    """Per-second slots: none twice, none missing between the first and the last."""
    assert len(slots) == len(set(slots)), f"a slot was enqueued twice: {slots}"
    assert len(slots) >= minimum, f"only {len(slots)} slots"
    gaps = [b for a, b in itertools.pairwise(slots) if b - a != timedelta(seconds=1)]
    assert not gaps, f"missed slots before {gaps}"
