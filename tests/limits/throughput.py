"""Drain throughput with and without limits: ``python -m tests.limits.throughput``.

One worker process (8 threads) drains N no-op jobs committed in one transaction, once per
scenario, each on a fresh migrated database. The figure is jobs / (last finish - first
start), read from the job rows, so neither process start-up nor enqueue time is in it.
The bench helper may call ``measure(scenario, jobs)`` directly.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tests.support import ROOT, TestDB, wait_for

#: scenario -> (actor, queue, number of distinct keys): see tests/limits/actors.py.
SCENARIOS: dict[str, tuple[str, str, int]] = {
    # No limits, with the schema as it was before limits: no trigger, no limit indexes.
    "none-before": ("limits.noop", "lim_none", 0),
    "none": ("limits.noop", "lim_none", 0),
    # fair=True, round-robin over 1 and over 10 keys.
    "fair-1": ("limits.noop_fair", "lim_fair", 1),
    "fair-10": ("limits.noop_fair", "lim_fair", 10),
    # Per-key rate and concurrency limits high enough never to bind: the checking cost.
    "limits-10": ("limits.noop_keyed", "lim_keyed", 10),
}


WITHOUT_LIMITS_SCHEMA = """
DROP TRIGGER queue_limit_slot_freed ON dramatiq.queue;
DROP INDEX dramatiq.queue_limit_waiting_idx, dramatiq.queue_limit_running_idx;
"""


def _server() -> str:
    if not os.environ.get("DATABASE_URL"):
        from app.devdb import ensure_running

        os.environ["DATABASE_URL"] = ensure_running()
    return os.environ["DATABASE_URL"]


@contextmanager
def fresh_db(revision: str = "head") -> Iterator[TestDB]:
    from tests.conftest import create_database, drop_database, migrate

    server = _server()
    name = f"pgjobs_lim_{uuid.uuid4().hex[:10]}"
    url = create_database(server, name)
    db = TestDB(owner_url=url, name=name)
    try:
        migrate(url, revision)
        yield db
    finally:
        db.stop_all()
        drop_database(server, name)


def _enqueue(db: TestDB, actor_name: str, jobs: int, keys: int) -> None:
    os.environ["DATABASE_URL"] = db.owner_url
    from app.config import get_settings

    get_settings.cache_clear()
    from tests.limits import actors

    actor = actors.broker.get_actor(actor_name)
    from app.jobs import enqueue_many

    with psycopg.connect(db.worker_url) as conn:
        if keys:
            for k in range(keys):
                items = [((i,), {}) for i in range(k, jobs, keys)]
                enqueue_many(conn, actor, items, limit_key=f"key-{k}")
        else:
            enqueue_many(conn, actor, [((i,), {}) for i in range(jobs)])


def measure(
    scenario: str, jobs: int = 5000, threads: int = 8, revision: str = "head"
) -> float:
    """Jobs per second for one drain of ``jobs`` no-op jobs in ``scenario``."""
    actor_name, queue, keys = SCENARIOS[scenario]
    with fresh_db(revision) as db:
        if scenario == "none-before":
            with db.owner() as conn:
                conn.execute(WITHOUT_LIMITS_SCHEMA)
        proc = subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "tests.limits.actors", "--processes", "1",
             "--threads", str(threads), "--queues", queue],
            # No retention pass during the drain: it would prune the rows we time.
            cwd=ROOT, env=db.env(JOBS_MAINTENANCE_SECONDS="3600"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        db.procs.append(proc)
        wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.workers"), timeout=30,
                 message="the worker to register")
        _enqueue(db, actor_name, jobs, keys)
        wait_for(
            lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'done'")
            == jobs,
            timeout=300, interval=0.2, message="the drain to finish",
        )
        seconds = db.scalar(
            "SELECT extract(epoch FROM max(mtime) - min(started_at))::float8 "
            "FROM dramatiq.queue"
        )
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        return jobs / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {s: [] for s in args.scenarios}
    for _ in range(args.runs):  # interleaved, so a noisy neighbour hits every scenario
        for scenario in args.scenarios:
            rates[scenario].append(measure(scenario, args.jobs))
    for scenario, runs in rates.items():
        runs.sort()
        print(f"{scenario:<12} median {runs[len(runs) // 2]:>7.0f} jobs/s  "
              f"runs {' '.join(f'{r:.0f}' for r in runs)}", flush=True)


if __name__ == "__main__":
    main()
