"""Build the broker with its middleware stack; ``configure()`` makes it dramatiq's global.

The stack is chosen deliberately (it is part of every job's cost): dramatiq's AgeLimit,
TimeLimit, ShutdownNotifications and AsyncIO (one event loop thread per worker process, for
``async def`` actors; nothing per job), plus worker leases, maintenance (leader only), the
declarations of our actor options and the job lifecycle, which decides every outcome.
dramatiq's Retries, Callbacks and Pipelines are left out: retries are the lifecycle's (same
row, backoff from the queue policy), and callbacks and pipelines would enqueue later from
options stored in a row, which tenant data must never steer (they are refused at enqueue).
"""

from __future__ import annotations

import functools

import dramatiq
from dramatiq import Middleware
from dramatiq.middleware import AgeLimit, AsyncIO, ShutdownNotifications, TimeLimit

from app.broker import PostgresJobsBroker
from app.broker.leases import WorkerLeases
from app.config import get_settings
from app.jobs.enqueue import send
from app.jobs.middleware.declarations import JobDeclarations
from app.jobs.middleware.lifecycle import JobLifecycle
from app.maintenance.service import Maintenance


class BrokerUnavailable(RuntimeError):
    """dramatiq's global broker is not ours, or ours cannot be built from the settings."""


def default_middleware() -> list[Middleware]:
    settings = get_settings()
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        AsyncIO(),
        WorkerLeases(
            lease_seconds=settings.lease_seconds, heartbeat_seconds=settings.heartbeat_seconds,
            neighbour_rescue=settings.neighbour_rescue,
        ),
        Maintenance(interval=settings.maintenance_seconds, batch=settings.retention_batch,
                    rescue_interval=settings.heartbeat_seconds),
        JobDeclarations(),
        JobLifecycle(pool_size=settings.worker_pool_size, metrics_port=settings.metrics_port,
                     happy_path_level=settings.events_log_level),
    ]


def build_broker(url: str | None = None) -> PostgresJobsBroker:
    """A broker connecting as ``app_worker`` (or ``url``), not yet dramatiq's global."""
    settings = get_settings()
    broker = PostgresJobsBroker(
        url=url or settings.worker_database_url,
        middleware=default_middleware(),
        claim_batch=settings.claim_batch,
        sweep_seconds=settings.claim_sweep_seconds,
        floors_after=settings.claim_floors_after,
        poll_seconds=settings.poll_seconds,
    )
    broker.sender = functools.partial(send, broker)
    return broker


def configure(url: str | None = None) -> PostgresJobsBroker:
    """Build the broker and set it as dramatiq's global, once per process.

    Idempotent: every ``@job`` calls it, so no module has to configure the broker before
    declaring actors. Raises ``BrokerUnavailable`` if another broker was set first.
    """
    current = _global()
    if isinstance(current, PostgresJobsBroker):
        return current
    if current is not None:
        raise BrokerUnavailable(
            f"dramatiq's global broker is a {type(current).__name__}, set before pgjobs "
            "configured its own: pgjobs actors run on the PostgreSQL broker only (remove the "
            "other dramatiq.set_broker() call)")
    try:
        broker = build_broker(url)
    except ValueError as exc:
        raise BrokerUnavailable(f"cannot configure the job broker: {exc}") from exc
    dramatiq.set_broker(broker)
    return broker


def _global() -> dramatiq.Broker | None:
    from dramatiq import broker as broker_module

    return broker_module.global_broker
