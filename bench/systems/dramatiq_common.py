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
from dramatiq.common import dq_name

from bench.procs import venv_tool
from bench.systems.base import QUEUE

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


def dramatiq_command(module: str, processes: int, threads: int | None = None) -> list[str]:
    return [
        venv_tool("dramatiq"),
        module,
        "--processes", str(processes),
        "--threads", str(threads or THREADS),
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


class DramatiqPgTable:
    """Progress queries on ``dramatiq.queue``, the table both dramatiq systems use."""

    # One count per (state, queue name), each an index range on either schema (ours: the
    # partial claim index for queued rows, the leased one for consumed; the stock one:
    # (state, mtime)). With
    # ``state IN (...) AND queue_name IN (...)`` PostgreSQL scanned the whole table instead:
    # 180 ms with 1,100,000 rows, every 0.1 s while a drain is polled, which took a core
    # from the system under test in table_size.
    _REMAINING = " + ".join(
        f"(SELECT count(*) FROM dramatiq.queue WHERE state = '{state}' AND queue_name = %(q{n})s)"
        for state in ("queued", "consumed") for n in (0, 1))

    def remaining(self, conn: psycopg.Connection) -> int:
        row = conn.execute(f"SELECT {self._REMAINING}",
                           {"q0": QUEUE, "q1": dq_name(QUEUE)}).fetchone()
        return int(row[0]) if row else 0

    def failed(self, conn: psycopg.Connection) -> int:
        row = conn.execute(
            "SELECT count(*) FROM dramatiq.queue WHERE state = 'rejected'"
        ).fetchone()
        return int(row[0]) if row else 0

    def started_any(self, conn: psycopg.Connection) -> bool:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM dramatiq.queue"
            " WHERE state IN ('consumed', 'done') AND queue_name = %s)",
            (QUEUE,),
        ).fetchone()
        return bool(row and row[0])
