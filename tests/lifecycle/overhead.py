"""Per-job cost of the lifecycle features: drain N no-op jobs with one worker process.

Usage: ``.venv/bin/python -m tests.lifecycle.overhead [--jobs 5000] [--repeats 3]
[--tree DIR ...]``. Each tree (default: this one) is a copy of the code to run the worker
from, e.g. one with the events middleware, maintenance and event NOTIFYs taken out; the
jobs are enqueued in one transaction while the worker is idle, and the clock runs from the
commit to the last completion. Prints jobs/s per tree (median of the repeats).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

from app.config import WORKER_ROLE, role_url
from app.jobs import enqueue_many
from tests.conftest import create_database, drop_database, migrate
from tests.lifecycle import actors
from tests.support import ROOT, wait_for

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def involved(conn: psycopg.Connection, pgid: int) -> set[int]:
    """The worker's processes and the database backends serving this database."""
    pids = {int(e) for e in os.listdir("/proc") if e.isdigit() and _pgid(int(e)) == pgid}
    backends = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = "
                            "current_database() AND pid <> pg_backend_pid()").fetchall()
    return pids | {p for (p,) in backends}


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def drain(tree: Path, owner_url: str, jobs: int, log: Path) -> tuple[float, float]:
    """(jobs/s, CPU ms per job of the worker and its database backends)."""
    worker_url = role_url(owner_url, WORKER_ROLE, "APP_WORKER_PASSWORD")
    env = {**os.environ, "DATABASE_URL": owner_url, "PYTHONPATH": str(tree)}
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("DELETE FROM dramatiq.queue")
        conn.execute("DELETE FROM dramatiq.workers")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "tests.lifecycle.actors", "--processes", "1",
             "--threads", "8", "--queues", actors.QUEUE],
            cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            wait_for(lambda: conn.execute("SELECT count(*) FROM dramatiq.workers").fetchone()[0],
                     timeout=60, message="the worker to register")
            before = {pid: cpu_seconds(pid) for pid in involved(conn, proc.pid)}
            with psycopg.connect(worker_url) as wconn, wconn.transaction():
                enqueue_many(wconn, actors.noop, [((n,), {}) for n in range(jobs)])
            started = time.monotonic()
            # Not "count of done = jobs": retention may already prune the first ones.
            wait_for(lambda: conn.execute(
                "SELECT count(*) FROM dramatiq.queue WHERE state IN ('queued', 'consumed')"
            ).fetchone()[0] == 0, timeout=300, interval=0.02, message="the drain")
            rate = jobs / (time.monotonic() - started)
            used = sum(cpu_seconds(p) - before.get(p, 0.0) for p in involved(conn, proc.pid))
            return rate, used * 1000 / jobs
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tree", action="append", default=[])
    args = parser.parse_args()
    trees = [Path(t) for t in args.tree] or [ROOT]
    if not os.environ.get("DATABASE_URL"):
        from app.devdb import ensure_running

        os.environ["DATABASE_URL"] = ensure_running()
    server = os.environ["DATABASE_URL"]
    name = f"pgjobs_overhead_{uuid.uuid4().hex[:8]}"
    url = create_database(server, name)
    rates: dict[Path, list[float]] = {t: [] for t in trees}
    cpu: dict[Path, list[float]] = {t: [] for t in trees}
    try:
        migrate(url)
        for r in range(args.repeats):
            for tree in trees:
                rate, ms = drain(tree, url, args.jobs, Path(f"/tmp/{name}-{tree.name}-{r}.log"))
                rates[tree].append(rate)
                cpu[tree].append(ms)
                print(f"{tree}: {rate:,.0f} jobs/s, {ms:.3f} CPU ms/job", flush=True)
    finally:
        drop_database(server, name)
    for tree, values in rates.items():
        print(f"{tree}: median {statistics.median(values):,.0f} jobs/s "
              f"({', '.join(f'{v:,.0f}' for v in values)}); median "
              f"{statistics.median(cpu[tree]):.3f} CPU ms/job (worker + its backends)")


if __name__ == "__main__":
    main()
