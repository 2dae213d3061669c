"""``python -m bench.pooler``: the enqueue benchmark direct and through PgBouncer (issue 16).

The application's own path, as in ``bench.scenarios.enqueue``'s tenant-session figure: a
``tenant_session`` as ``app_user`` (RLS checking the row), one job enqueued, commit; with 1
and with N client threads, and a batch of 500 jobs per transaction. Three ways to the same
fresh, migrated database:

* ``direct``: PostgreSQL itself (psycopg's prepared statements on, as in the direct layout);
* ``direct, unprepared``: the same with prepared statements off, so the pooler's own cost
  and the cost of giving up prepared statements can be told apart;
* ``pgbouncer``: PgBouncer in transaction mode as the README's Deployment section configures it (no
  prepared statements, ``server_reset_query_always = 1`` with the reset of session state);
* ``pgbouncer, DISCARD ALL``: the same with ``DISCARD ALL`` as the reset (which also drops
  every cached plan), and ``pgbouncer, no reset`` without any, to show what resets cost
  (no reset is not a layout to deploy: session leftovers reach other tenants).

Prints jobs/s (median of the repeats, min-max) and each pooled figure's ratio to direct.

    python -m bench.pooler                        # 3 repeats, 2,000 jobs per figure
    python -m bench.pooler --jobs 300 --repeats 1 # a smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from bench.dbadmin import Databases, admin_url, with_user
from bench.systems.ours import Ours, actors_module

BATCH = 500


@dataclass
class Figure:
    path: str
    name: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else 0.0

    def cell(self) -> str:
        if not self.values:
            return "-"
        return f"{self.median:,.0f} ({min(self.values):,.0f}-{max(self.values):,.0f})"


def _timed(threads: int, work: Callable[[int], None]) -> float:
    """Seconds for ``threads`` threads to each run ``work(thread)``, started together."""
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            work(n)
        except BaseException as exc:  # reported below, never a silent drop
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} client threads failed; first: {errors[0]!r}")
    return time.perf_counter() - started


def engine(app_url: str, size: int, *, unprepared: bool = False) -> Engine:
    """The application's engine for ``app_url`` (pooled or not, as app.config says), or a
    direct one with prepared statements off."""
    from sqlalchemy import create_engine

    from app.db.connections import connect_kwargs
    from app.db.engine import engine_for, sqlalchemy_url

    if not unprepared:
        return engine_for(app_url, size)
    return create_engine(sqlalchemy_url(app_url), pool_size=size, max_overflow=0,
                         connect_args={**connect_kwargs("pgjobs-bench"),
                                       "prepare_threshold": None})


def measure(path: str, app_engine: Engine, tenants: list[uuid.UUID], args: argparse.Namespace
            ) -> list[Figure]:
    from app.db.tenant import tenant_session
    from app.jobs import enqueue, enqueue_many

    actor = actors_module().ACTORS["write"]
    engine = app_engine
    one = Figure(path, "1 job/txn, 1 thread")
    many = Figure(path, f"1 job/txn, {args.threads} threads")
    batch = Figure(path, f"{BATCH} jobs/txn, 1 thread")
    counter = iter(range(10**9))

    def singles(count: int) -> Callable[[int], None]:
        def work(_thread: int) -> None:
            for _ in range(count):
                i = next(counter)
                with tenant_session(tenants[i % len(tenants)], engine=engine) as session:
                    enqueue(session, actor, i)
        return work

    def batches(_thread: int) -> None:
        for _ in range(args.batches):
            i = next(counter)
            with tenant_session(tenants[i % len(tenants)], engine=engine) as session:
                enqueue_many(session, actor, [((n,), {}) for n in range(BATCH)])

    _timed(args.threads, singles(20))  # warm up: connections, caches, prepared statements
    for _ in range(args.repeats):
        one.values.append(args.jobs / _timed(1, singles(args.jobs)))
        per_thread = max(1, args.jobs // args.threads)
        many.values.append(per_thread * args.threads / _timed(args.threads,
                                                               singles(per_thread)))
        batch.values.append(args.batches * BATCH / _timed(1, batches))
    return [one, many, batch]


def report(figures: dict[str, list[Figure]]) -> None:
    """One row per figure: jobs/s per path, then each path's ratio to ``direct``."""
    direct = {f.name: f for f in figures["direct"]}
    names = [f.name for f in figures["direct"]]
    others = [path for path in figures if path != "direct"]
    rows = [["jobs/s (median, min-max)", *figures, *(f"{p} / direct" for p in others)]]
    for name in names:
        cells = {path: next(f for f in figures[path] if f.name == name) for path in figures}
        ratios = [cells[p].median / direct[name].median if direct[name].median else 0.0
                  for p in others]
        rows.append([name, *(cells[p].cell() for p in figures),
                     *(f"{r:.2f}x" for r in ratios)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths, strict=True))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per figure and repeat")
    parser.add_argument("--batches", type=int, default=10,
                        help=f"transactions of {BATCH} jobs per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--pool-size", type=int, default=8,
                        help="PgBouncer's default_pool_size (server connections per role)")
    args = parser.parse_args(argv)

    from tests.pooler import pgbouncer

    admin = admin_url()
    databases = Databases(admin)
    bouncers: dict[str, pgbouncer.PgBouncer] = {}
    try:
        url = databases.create("bench_pooler")
        system = Ours()
        system.install(url)
        tenants = system.make_tenants(url, 20)
        dbname = "bench_pooler"
        bouncers["pgbouncer"] = pgbouncer.start(admin, default_pool_size=args.pool_size)
        bouncers["pgbouncer, DISCARD ALL"] = pgbouncer.start(
            admin, default_pool_size=args.pool_size, server_reset_query="DISCARD ALL")
        bouncers["pgbouncer, no reset"] = pgbouncer.start(
            admin, default_pool_size=args.pool_size, server_reset_query_always=0)
        print(f"bench.pooler: {pgbouncer.version(pgbouncer.find_pgbouncer() or 'pgbouncer')}, "
              f"transaction mode, default_pool_size {args.pool_size}; {args.jobs} jobs per "
              f"figure, {args.repeats} repeats, {args.threads} client threads")
        os.environ["DATABASE_URL"] = url
        os.environ["JOBS_TRANSACTION_POOLER"] = ",".join(b.address for b in bouncers.values())
        for key in ("APP_DATABASE_URL", "ACTOR_DATABASE_URL", "WORKER_DATABASE_URL"):
            os.environ.pop(key, None)
        from app.config import get_settings

        get_settings.cache_clear()
        direct = with_user(url, "app_user")
        size = max(2, args.threads)
        engines = {"direct": engine(direct, size),
                   "direct, unprepared": engine(direct, size, unprepared=True),
                   **{name: engine(b.url("app_user", dbname), size)
                      for name, b in bouncers.items()}}
        figures: dict[str, list[Figure]] = {}
        for path, app_engine in engines.items():
            print(f"  {path} ...", flush=True)
            figures[path] = measure(path, app_engine, tenants, args)
            app_engine.dispose()
        report(figures)
    finally:
        for bouncer in bouncers.values():
            bouncer.stop()
        databases.drop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
