"""``make demo``: a small multi-tenant workload that proves the promises end to end.

Three tenants enqueue webhook jobs inside their own transactions (one transaction rolls
back), one tenant's job fails until it is dead-lettered, one job is delayed. The first
tenant also sends a notification on each channel, schedules a message, cancels another and
has its digest emailed, against fake providers this process starts
(``app/demo_messaging.py``). Real worker processes run them. Exits 0 only if every job
ended as expected.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from app.actors import demo, webhooks
from app.config import get_settings
from app.db.connections import connect
from app.db.models import ActivityEvent
from app.db.tenant import tenant_session
from app.demo_families import FamiliesDemo
from app.demo_messaging import MessagingDemo
from app.jobs import enqueue
from app.stack import Stack
from app.store import operator

JOBS_PER_TENANT = 5
TIMEOUT = 90.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def webhook(event_id: str) -> dict[str, Any]:
    return {"source": "test", "event_id": event_id, "event_type": "demo.ping",
            "payload": {"demo": True}, "received_at": datetime.now(UTC).isoformat()}


def create_tenants(owner: psycopg.Connection[Any], run: str) -> list[uuid.UUID]:
    rows = owner.execute(
        "INSERT INTO tenants (name) SELECT %s || '-' || n FROM generate_series(1, 3) n "
        "RETURNING id", (f"demo-{run}",)
    ).fetchall()
    return [r[0] for r in rows]


def feed(tenants: list[uuid.UUID], run: str) -> str:
    """Each tenant enqueues in its own transactions; returns the rolled-back event id."""
    for t, tenant in enumerate(tenants):
        with tenant_session(tenant) as session:
            for i in range(JOBS_PER_TENANT - 1):
                enqueue(session, webhooks.process, webhook(f"{run}-{t}-{i}"))
            enqueue(session, webhooks.process, webhook(f"{run}-{t}-delayed"), delay=2)
    rolled_back = f"{run}-0-rolled-back"
    try:
        with tenant_session(tenants[0]) as session:
            enqueue(session, webhooks.process, webhook(rolled_back))
            raise RuntimeError("the demo rolls this transaction back")
    except RuntimeError:
        pass
    with tenant_session(tenants[1]) as session:
        enqueue(session, demo.always_fails, "demo of retries and dead letters")
    return rolled_back


def settled(owner: psycopg.Connection[Any], tenants: list[uuid.UUID]) -> bool:
    rows = owner.execute(operator.TENANT_PENDING, {"tenants": tenants}).fetchone()
    # Webhooks, the activity jobs they enqueue, and the failing job.
    expected = len(tenants) * JOBS_PER_TENANT * 2 + 1
    return bool(rows and rows[0] == 0 and rows[1] >= expected)


def verify(
    owner: psycopg.Connection[Any], tenants: list[uuid.UUID], rolled_back: str
) -> list[Check]:
    counts: dict[tuple[Any, str, str], tuple[int, int, str | None]] = {
        (t, a, s): (n, att, err)
        for t, a, s, n, att, err in owner.execute(operator.TENANT_OUTCOMES, {"tenants": tenants})
    }
    checks = []
    for t, tenant in enumerate(tenants):
        done = counts.get((tenant, "webhooks.process", "done"), (0, 0, None))[0]
        published = counts.get((tenant, "activity.publish", "done"), (0, 0, None))[0]
        checks.append(Check(f"tenant {t + 1}: webhooks done", done == JOBS_PER_TENANT,
                            f"{done}/{JOBS_PER_TENANT} (one was delayed 2 s)"))
        checks.append(Check(f"tenant {t + 1}: activity jobs done", published == JOBS_PER_TENANT,
                            f"{published}/{JOBS_PER_TENANT}, enqueued by the webhook jobs"))
        with tenant_session(tenant) as session:
            seen = session.scalar(select(func.count()).select_from(ActivityEvent))
        checks.append(Check(f"tenant {t + 1}: sees only its own activity (RLS)",
                            seen == JOBS_PER_TENANT, f"{seen} events visible"))
    dead = counts.get((tenants[1], "demo.always_fails", "rejected"))
    checks.append(Check(
        "failing job dead-lettered after 3 attempts with its error",
        bool(dead and dead[1] == 3 and dead[2] and "failing on purpose" in dead[2]),
        f"attempts={dead[1] if dead else None} last_error={dead[2] if dead else None!r}",
    ))
    leaked = owner.execute(operator.PAYLOAD_MENTIONS,
                           {"pattern": f"%{rolled_back}%"}).fetchone()
    checks.append(Check("rolled-back transaction left no job", bool(leaked and leaked[0] == 0),
                        f"{leaked[0] if leaked else '?'} rows"))
    return checks


def main() -> int:
    console = Console()
    settings = get_settings()
    run = uuid.uuid4().hex[:6]
    messaging = MessagingDemo()
    families = FamiliesDemo().start()  # fake model, Slack and Shopify for the workers
    started = time.monotonic()
    with connect(settings.database_url, name="pgjobs-demo") as owner, \
            messaging.running() as provider_env:
        stack = Stack(processes=1, threads=4, scheduler=False, intake=False,
                      env={**provider_env, **families.env()})
        tenants = create_tenants(owner, run)
        stack.start()
        try:
            rolled_back = feed(tenants, run)
            messaging.feed(owner, tenants[0])
            families.feed(run)
            console.print(f"demo {run}: 3 tenants enqueued {3 * JOBS_PER_TENANT} webhooks, "
                          "1 failing job, 1 rolled-back transaction; 3 notifications, "
                          "2 scheduled messages (1 cancelled), a digest; workers running...")
            deadline = time.monotonic() + TIMEOUT
            while not (settled(owner, tenants) and families.settled()) and (
                    time.monotonic() < deadline):
                time.sleep(0.2)
            checks = verify(owner, tenants, rolled_back)
            checks += [Check(*c) for c in messaging.verify(owner)]
            checks += [Check(*check) for check in families.verify()]
        finally:
            stack.stop(10)
            families.stop()
    table = Table(title=f"make demo ({time.monotonic() - started:.1f} s)")
    for column in ("check", "result", "detail"):
        table.add_column(column)
    for check in checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAILED[/]", check.detail)
    console.print(table)
    ok = all(c.ok for c in checks)
    console.print("[green]every job ended as expected[/]" if ok else "[red]demo failed[/]")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
