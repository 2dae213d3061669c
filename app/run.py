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
from app.stack import Stack

STATUS = """
SELECT regexp_replace(queue_name, '\\.DQ$', '') AS queue,
       count(*) FILTER (WHERE "state" = 'queued' AND queue_name NOT LIKE '%%.DQ') AS queued,
       count(*) FILTER (WHERE "state" = 'queued' AND queue_name LIKE '%%.DQ') AS delayed,
       count(*) FILTER (WHERE "state" = 'consumed') AS running,
       count(*) FILTER (WHERE "state" = 'done') AS done,
       count(*) FILTER (WHERE "state" = 'rejected') AS dead
FROM dramatiq.queue
GROUP BY 1
ORDER BY 1
"""

WORKERS = """
SELECT count(*) FILTER (WHERE heartbeat_at > now() - interval '10 seconds') FROM dramatiq.workers
"""


def status_table(conn: psycopg.Connection[Any], alive: dict[str, bool],
                 dashboard: str = "") -> Table:
    rows = conn.execute(STATUS).fetchall()
    workers = conn.execute(WORKERS).fetchone()
    processes = ", ".join(f"{name} {'up' if up else 'DOWN'}" for name, up in alive.items())
    alive_workers = workers[0] if workers else 0
    table = Table(title=f"pgjobs: {processes}; worker processes alive: {alive_workers}"
                  " (Ctrl-C stops)", caption=dashboard or None)
    for column in ("queue", "queued", "delayed", "running", "done", "dead"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    if not rows:
        table.add_row("(no jobs yet)", "", "", "", "", "")
    return table


def main() -> int:
    console = Console()
    dashboard_env, dashboard = dashboard_login()
    stack = Stack(dashboard=True, env=dashboard_env)
    stack.start()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with psycopg.connect(get_settings().database_url, autocommit=True) as conn, Live(
            console=console, refresh_per_second=2
        ) as live:
            while not stop.wait(1.0):
                live.update(status_table(conn, stack.alive(), dashboard))
    finally:
        console.print("stopping: in-flight jobs finish, the rest are handed back...")
        codes = stack.stop(get_settings().shutdown_timeout_seconds)
        console.print(f"stopped: {codes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
