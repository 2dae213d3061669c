"""``make run``: workers and scheduler, with a live per-queue status table until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from typing import Any

import psycopg
from rich.console import Console
from rich.live import Live
from rich.table import Table

from app.config import get_settings
from app.dashboard.run import dashboard_login
from app.db.connections import connect
from app.stack import Stack
from app.store import operator


def status_table(
    conn: psycopg.Connection[Any], alive: dict[str, bool], intake_url: str | None = None,
    dashboard: str = "",
) -> Table:
    rows = conn.execute(operator.STATUS).fetchall()
    workers = conn.execute(operator.LIVE_WORKERS).fetchone()
    processes = ", ".join(f"{name} {'up' if up else 'DOWN'}" for name, up in alive.items())
    alive_workers = workers[0] if workers else 0
    intake = f"; intake {intake_url}" if intake_url else ""
    table = Table(title=f"pgjobs: {processes}; worker processes alive: {alive_workers}"
                  f"{intake} (Ctrl-C stops)", caption=dashboard or None)
    for column in ("queue", "queued", "delayed", "running", "done", "dead"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    if not rows:
        table.add_row("(no jobs yet)", "", "", "", "", "")
    return table


def main() -> int:
    console = Console()
    from app.intake.settings import IntakeSettings

    intake = IntakeSettings.from_env()
    dashboard_env, dashboard = dashboard_login()
    stack = Stack(dashboard=True, env=dashboard_env)
    stack.start()
    intake_url = f"http://{intake.host}:{intake.port}" if stack.intake else None
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with connect(get_settings().database_url, name="pgjobs-run") as conn, Live(
            console=console, refresh_per_second=2
        ) as live:
            while not stop.wait(1.0):
                live.update(status_table(conn, stack.alive(), intake_url, dashboard))
    finally:
        console.print("stopping: in-flight jobs finish, the rest are handed back...")
        codes = stack.stop(get_settings().shutdown_timeout_seconds)
        console.print(f"stopped: {codes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
