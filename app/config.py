"""Settings from the environment, read once.

Four database identities, least privilege (the threat model is in the README): the owner
(``DATABASE_URL``) runs migrations and operations; ``app_user`` serves application code
(RLS, one tenant at a time); ``app_actor`` runs actor code (RLS, the running job's tenant
only, which it cannot choose); ``app_worker`` is the broker's own connections (claims and
completes any job, sees no tenant data). The role URLs default to the owner's URL with the
user swapped, so one variable is enough on a developer machine.

Behind a transaction pooler (``JOBS_TRANSACTION_POOLER``, see ``app.db.pooler``), what needs a
session of its own (LISTEN, session advisory locks, the workers' claims) connects through a
direct URL per role: ``DATABASE_DIRECT_URL``, ``APP_DIRECT_URL``, ``WORKER_DIRECT_URL``. Each
defaults to its role's URL when that one is not pooled (so a direct layout needs none), else
to ``DATABASE_DIRECT_URL`` with the role's user; without any, it is None and the feature that
needs it refuses to start (``app.db.connections.session_url``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.engine import make_url

from app.db.pooler import Address, describe, is_pooled, parse_addresses
from app.db.roles import ACTOR_ROLE, APP_ROLE, WORKER_ROLE

__all__ = ["ACTOR_ROLE", "APP_ROLE", "WORKER_ROLE", "Settings", "get_settings"]


def _owner_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from app.devdb import embedded_url

    return embedded_url()


def role_url(owner_url: str, role: str, password_env: str) -> str:
    """The owner's URL with ``role`` as the user (password from ``password_env``, if set)."""
    url = make_url(owner_url).set(username=role, password=os.environ.get(password_env) or None)
    return url.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """A URL psycopg accepts: SQLAlchemy's ``+driver`` suffix removed."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True)
class Settings:
    database_url: str
    app_database_url: str
    actor_database_url: str
    worker_database_url: str
    #: Seconds to wait for a connection to open (a server that accepts TCP but never answers
    #: fails within this instead of hanging) and for a pooled one to be free.
    connect_timeout: float
    pool_timeout: float
    worker_pool_size: int
    lease_seconds: float
    heartbeat_seconds: float
    claim_batch: int
    #: At least this often a claim reads its queue from the oldest ready row, not from its
    #: floors (it finds a row that became ready behind a floor without a notification).
    claim_sweep_seconds: float
    #: Claims start from floors once a claim from the oldest row takes longer than this.
    claim_floors_after: float
    poll_seconds: float
    shutdown_timeout_seconds: float
    metrics_port: int
    #: Seconds between maintenance ticks (retention pruning, queue gauges) on the leader.
    maintenance_seconds: float
    #: Rows deleted per retention statement (short transactions, no long locks).
    retention_batch: int
    #: Log level of the happy-path lifecycle events (enqueued, active, progress, completed);
    #: DEBUG by default: at INFO they double a no-op job's CPU cost.
    events_log_level: str
    #: Take back the jobs of dead workers on this host without waiting for their lease.
    neighbour_rescue: bool
    #: Addresses (host, port) of transaction poolers: URLs to them carry no session state.
    transaction_poolers: frozenset[Address] = frozenset()
    #: The poolers keep prepared statements (PgBouncer >= 1.21, ``max_prepared_statements``).
    pooler_prepared_statements: bool = False
    #: Session URLs (LISTEN, advisory locks, claims) per role; None: pooled, and none given.
    database_direct_url: str | None = None
    app_direct_url: str | None = None
    worker_direct_url: str | None = None

    def is_pooled(self, url: str) -> bool:
        """Whether ``url`` goes through one of the transaction poolers."""
        return is_pooled(url, self.transaction_poolers)

    def direct_urls(self) -> list[tuple[str, str | None, str]]:
        """(role URL, its session URL or None, the variable that sets it), per role."""
        return [
            (self.database_url, self.database_direct_url, "DATABASE_DIRECT_URL"),
            (self.app_database_url, self.app_direct_url, "APP_DIRECT_URL"),
            (self.worker_database_url, self.worker_direct_url, "WORKER_DIRECT_URL"),
        ]


def env_number(name: str, default: float) -> float:
    """The number in environment variable ``name`` (``default`` when unset or empty), or a
    ValueError naming the variable and its bad value."""
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def _direct_url(
    variable: str, url: str, poolers: frozenset[Address], fallback: str | None = None,
    role: str | None = None, password_env: str = "",
) -> str | None:
    """``variable`` if set (never a pooler's address), else ``url`` if it is not pooled, else
    ``fallback`` (the owner's direct URL) with ``role`` as the user, else None."""
    explicit = os.environ.get(variable)
    if explicit:
        explicit = libpq_url(explicit)
        if is_pooled(explicit, poolers):
            raise ValueError(
                f"{variable} points at a transaction pooler ({describe(explicit)}, listed in "
                "JOBS_TRANSACTION_POOLER): it must reach PostgreSQL directly, or through a "
                "session-mode pool")
        return explicit
    if not is_pooled(url, poolers):
        return url
    if fallback is not None and role is not None:
        return libpq_url(role_url(fallback, role, password_env))
    return None


def _flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be 1 or 0, got {raw!r}")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    owner = libpq_url(_owner_url())
    poolers = parse_addresses(os.environ.get("JOBS_TRANSACTION_POOLER", ""))
    app_url = libpq_url(
        os.environ.get("APP_DATABASE_URL") or role_url(owner, APP_ROLE, "APP_USER_PASSWORD"))
    worker_url = libpq_url(
        os.environ.get("WORKER_DATABASE_URL")
        or role_url(owner, WORKER_ROLE, "APP_WORKER_PASSWORD"))
    owner_direct = _direct_url("DATABASE_DIRECT_URL", owner, poolers)
    return Settings(
        database_url=owner,
        app_database_url=app_url,
        actor_database_url=libpq_url(
            os.environ.get("ACTOR_DATABASE_URL")
            or role_url(owner, ACTOR_ROLE, "APP_ACTOR_PASSWORD")
        ),
        worker_database_url=worker_url,
        transaction_poolers=poolers,
        pooler_prepared_statements=_flag("JOBS_POOLER_PREPARED_STATEMENTS"),
        database_direct_url=owner_direct,
        app_direct_url=_direct_url("APP_DIRECT_URL", app_url, poolers, owner_direct, APP_ROLE,
                                   "APP_USER_PASSWORD"),
        worker_direct_url=_direct_url("WORKER_DIRECT_URL", worker_url, poolers, owner_direct,
                                      WORKER_ROLE, "APP_WORKER_PASSWORD"),
        connect_timeout=env_number("JOBS_CONNECT_TIMEOUT", 5),
        pool_timeout=env_number("JOBS_POOL_TIMEOUT", 5),
        worker_pool_size=int(env_number("JOBS_WORKER_POOL_SIZE", 10)),
        lease_seconds=env_number("JOBS_LEASE_SECONDS", 10),
        heartbeat_seconds=env_number("JOBS_HEARTBEAT_SECONDS", 2),
        claim_batch=int(env_number("JOBS_CLAIM_BATCH", 200)),
        claim_sweep_seconds=env_number("JOBS_CLAIM_SWEEP_SECONDS", 1),
        claim_floors_after=env_number("JOBS_CLAIM_FLOORS_AFTER_MS", 2) / 1000,
        poll_seconds=env_number("JOBS_POLL_SECONDS", 5),
        shutdown_timeout_seconds=env_number("JOBS_SHUTDOWN_TIMEOUT", 30),
        metrics_port=int(env_number("JOBS_METRICS_PORT", 0)),
        maintenance_seconds=env_number("JOBS_MAINTENANCE_SECONDS", 5),
        retention_batch=int(env_number("JOBS_RETENTION_BATCH", 500)),
        events_log_level=os.environ.get("JOBS_EVENTS_LOG_LEVEL", "DEBUG").upper(),
        neighbour_rescue=os.environ.get("JOBS_NEIGHBOUR_RESCUE", "1") not in ("0", "false"),
    )
