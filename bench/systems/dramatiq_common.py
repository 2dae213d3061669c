"""What the two dramatiq-based systems (ours and the stock broker) share: the worker command
and the queries on dramatiq-pg's table, which both use.

Both run under dramatiq's own CLI with its default 8 threads per process, so the only
difference between them is the broker and its middleware.
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile

import psycopg

from bench.procs import venv_tool

THREADS = 8
_ports = itertools.count(19191)
_prom_root: str | None = None


def _prom_dir() -> str:
    """A fresh directory under one per-run root, removed when the bench exits."""
    global _prom_root
    if _prom_root is None:
        _prom_root = tempfile.mkdtemp(prefix="bench-prom-")
        atexit.register(shutil.rmtree, _prom_root, True)
    return tempfile.mkdtemp(dir=_prom_root)


def dramatiq_command(module: str, processes: int) -> list[str]:
    return [
        venv_tool("dramatiq"),
        module,
        "--processes", str(processes),
        "--threads", str(THREADS),
        "--queues", "bench",
        "--worker-shutdown-timeout", "2000",
    ]


def prometheus_env() -> dict[str, str]:
    """A port and state directory of its own for each worker group.

    dramatiq's default middleware includes Prometheus, whose exposition server binds a fixed
    port; two worker groups at once (the orphan scenario) would otherwise collide.
    """
    return {
        "dramatiq_prom_host": "127.0.0.1",
        "dramatiq_prom_port": str(next(_ports)),
        "dramatiq_prom_db": _prom_dir(),
    }


def started_any(conn: psycopg.Connection, queue: str) -> bool:
    """Has any job of ``queue`` started (running or done) in ``dramatiq.queue``?"""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM dramatiq.queue"
        " WHERE state IN ('consumed', 'done') AND queue_name = %s)",
        (queue,),
    ).fetchone()
    return bool(row and row[0])
