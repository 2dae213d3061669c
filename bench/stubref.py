"""In-process reference: dramatiq's ``StubBroker`` draining no-op jobs, no database at all.

It shows what the dramatiq worker and a middleware stack cost by themselves, so a broker's
figure can be read against the ceiling of one Python process. Run in a subprocess of its
own (``python -m bench.stubref VARIANT JOBS REPEATS``) so the bench's threads do not share
its GIL; prints one JSON list of jobs/s.

The caller sets ``dramatiq_prom_db`` to an existing directory (Prometheus' multiprocess
store, as the CLI would).

Variants: ``default`` (dramatiq's default middleware), ``retries`` (Retries only) and
``ours`` (``app.jobs.setup.default_middleware()`` minus the middleware with database threads
of their own, ``WorkerLeases`` and ``Maintenance``; messages are wrapped as our consumer
wraps them). Logging is set up at INFO into /dev/null, as dramatiq's CLI sets INFO for its
workers, so per-job log lines cost what they cost there (minus the pipe to the master).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq import Middleware, Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries, default_middleware

THREADS = 8


#: Our middleware that talks to the database from worker threads of their own; left out.
DB_MIDDLEWARE = {"WorkerLeases", "Maintenance"}


def ours_broker() -> StubBroker:
    from app.broker.broker import PostgresJobsBroker
    from app.broker.message import JobMessage
    from app.jobs.setup import default_middleware as ours_default
    from app.store.rows import Claimed

    middleware = [m for m in ours_default() if type(m).__name__ not in DB_MIDDLEWARE]
    for m in middleware:
        if type(m).__name__ == "JobLifecycle":
            # Its boot warms up database connections: with a development database running
            # the actor engine connects and then the never-connected broker pool waits out
            # its timeout (5 s inside the timed run). A no-op job needs neither.
            m.after_worker_boot = lambda broker, worker: None  # type: ignore[method-assign]
    # Attributes our middleware reads from its broker (limits registry, worker id...) come
    # from a real, never-connected instance of our broker.
    real = PostgresJobsBroker(url="postgresql:///unused", middleware=[])

    class WrappingConsumer:
        """The stub consumer, handing out ``JobMessage`` like our consumer does."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __iter__(self) -> WrappingConsumer:
            return self

        def __next__(self) -> Any:
            proxy = next(self.inner)
            if proxy is None:
                return None
            return JobMessage(proxy._message, Claimed(
                message_id=proxy.message_id, message=None, tenant_id=None, attempts=1,
                max_attempts=None, priority=0, eta=None, lease="", tenant_status="ok",
                claimed=datetime.now(UTC)))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    class OursStub(StubBroker):
        url = "postgresql:///unused"  # TenantContext builds a lazy engine; never connects

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 100) -> Any:
            return WrappingConsumer(super().consume(queue_name, prefetch, timeout))

    return OursStub(middleware=middleware)


def make_broker(variant: str) -> StubBroker:
    if variant == "default":
        return StubBroker(middleware=[m() for m in default_middleware])
    if variant == "retries":
        return StubBroker(middleware=[Retries()])
    if variant == "ours":
        return ours_broker()
    raise SystemExit(f"unknown variant {variant!r}")


def run_once(variant: str, jobs: int) -> float:
    broker = make_broker(variant)
    dramatiq.set_broker(broker)
    broker.emit_after("process_boot")  # as dramatiq's CLI does in each worker process
    options: dict[str, Any] = {"tenant_free": True} if variant == "ours" else {}

    def noop(i: int) -> None:
        pass

    actor = dramatiq.actor(noop, actor_name="bench.noop", queue_name="bench", broker=broker,
                           **options)
    for i in range(jobs):
        actor.send(i)
    worker = Worker(broker, worker_threads=THREADS, worker_timeout=100)
    started = time.perf_counter()
    worker.start()
    broker.join("bench")
    worker.join()
    elapsed = time.perf_counter() - started
    worker.stop()
    broker.close()
    return jobs / elapsed


def middleware_names(variant: str) -> list[str]:
    broker = make_broker(variant)
    return [type(m).__name__ for m in broker.middleware if isinstance(m, Middleware)]


def main(argv: list[str]) -> int:
    variant, jobs, repeats = argv[0], int(argv[1]), int(argv[2])
    logging.basicConfig(
        level=logging.INFO,
        format="[%(asctime)s] [PID %(process)d] [%(threadName)s] [%(name)s] "
               "[%(levelname)s] %(message)s",
        handlers=[logging.StreamHandler(open(os.devnull, "w"))],
    )
    rates = [run_once(variant, jobs) for _ in range(repeats)]
    print(json.dumps({"rates": rates, "middleware": middleware_names(variant)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
