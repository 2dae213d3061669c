"""Build the broker with its middleware stack; ``configure()`` makes it dramatiq's global.

The stack is chosen deliberately (it is part of every job's cost): dramatiq's cheap
defaults minus Prometheus and its Retries, plus leases, enqueue defaults, our retries and
the tenant context. Retries sits before TenantContext so that, after a job, the tenant
transaction has committed or failed before the retry decision is taken.
"""

from __future__ import annotations

import dramatiq
from dramatiq import Middleware
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    ShutdownNotifications,
    TimeLimit,
)

from app.broker import PostgresJobsBroker
from app.broker.leases import WorkerLeases
from app.config import get_settings
from app.jobs.maintenance import Maintenance
from app.jobs.middleware.defaults import JobDefaults
from app.jobs.middleware.events import JobEvents
from app.jobs.middleware.limits import JobLimits
from app.jobs.middleware.retries import JobRetries
from app.jobs.middleware.tenant import TenantContext


def default_middleware() -> list[Middleware]:
    settings = get_settings()
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        WorkerLeases(
            lease_seconds=settings.lease_seconds, heartbeat_seconds=settings.heartbeat_seconds,
            neighbour_rescue=settings.neighbour_rescue,
        ),
        # Before retries and tenant: its after-hooks run after theirs and log the outcome.
        JobEvents(
            metrics_port=settings.metrics_port, happy_path_level=settings.events_log_level
        ),
        Maintenance(
            interval=settings.maintenance_seconds, batch=settings.retention_batch
        ),
        JobDefaults(),
        JobLimits(),
        JobRetries(),
        TenantContext(pool_size=settings.worker_pool_size),
    ]


def build_broker(url: str | None = None) -> PostgresJobsBroker:
    """A broker connecting as ``app_worker`` (or ``url``), not yet dramatiq's global."""
    settings = get_settings()
    worker_url = url or settings.worker_database_url
    return PostgresJobsBroker(
        url=worker_url,
        middleware=default_middleware(),
        claim_batch=settings.claim_batch,
        poll_seconds=settings.poll_seconds,
    )


def configure(url: str | None = None) -> PostgresJobsBroker:
    """Build the broker and set it as dramatiq's global, once per process."""
    current = dramatiq.get_broker() if _has_global() else None
    if isinstance(current, PostgresJobsBroker):
        return current
    broker = build_broker(url)
    dramatiq.set_broker(broker)
    return broker


def _has_global() -> bool:
    from dramatiq import broker as broker_module

    return broker_module.global_broker is not None
