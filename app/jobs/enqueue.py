"""The public enqueue API: jobs join the caller's transaction, for the caller's tenant.

``enqueue(session, actor, ...)`` inserts the job row (and its NOTIFY, delivered at commit)
on the session's own connection, so the job exists exactly when the caller's transaction
commits. The tenant is the transaction's: the database takes it from there
(``pgjobs.enqueue``), never from an argument or an option. ``actor.send()`` follows the
same rule: inside a job it joins the job's transaction, inside a ``tenant_session`` that
session's; elsewhere only system (``tenant_free``) actors can be sent, through the broker.
A system job reaches tenants through one API: :func:`fan_out`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
import psycopg
from dramatiq import Message
from sqlalchemy.orm import Session

from app.broker.broker import PostgresJobsBroker
from app.broker.message import FORBIDDEN_OPTIONS
from app.db.engine import Target, raw_connection
from app.db.tenant import TENANT_KEY, open_tenant_session
from app.jobs.context import current_job
from app.jobs.errors import EnqueueRefused
from app.jobs.events import record
from app.jobs.limits import key_for
from app.jobs.policies import max_attempts_for, policy_for
from app.store import enqueue as store
from app.store.rows import Inserted


@dataclass(frozen=True)
class EnqueueResult:
    message_id: str
    #: True when an existing job (same unique key) was kept and nothing new was enqueued.
    duplicate: bool


def _delay_seconds(delay: float | None, eta: datetime | None) -> float | None:
    if eta is not None:
        if eta.tzinfo is None:
            raise ValueError(f"eta must be timezone-aware, got {eta!r}")
        delay = (eta - datetime.now(UTC)).total_seconds()
    if delay is None or delay <= 0:
        return None
    return float(delay)


def _broker(actor: dramatiq.Actor) -> PostgresJobsBroker:
    broker = actor.broker
    if not isinstance(broker, PostgresJobsBroker):
        raise TypeError(f"actor {actor.actor_name!r} is not bound to a PostgresJobsBroker")
    return broker


def refuse_options(message: Message) -> None:
    """``EnqueueRefused`` naming an option no caller may give (a tenant, a callback...)."""
    forbidden = sorted(FORBIDDEN_OPTIONS & message.options.keys())
    if forbidden:
        if forbidden[0] == "tenant_id":
            raise EnqueueRefused(
                f"actor {message.actor_name!r}: tenant_id is not an option: a job belongs to "
                "the tenant of the transaction that enqueues it (enqueue inside a "
                "tenant_session, or from a job of that tenant)")
        raise EnqueueRefused(
            f"actor {message.actor_name!r}: option {forbidden[0]!r} is not supported "
            "(pipelines and callbacks would enqueue from data outside the transaction: "
            "enqueue the next job from inside the actor, in the job's transaction)")


def prepare(broker: PostgresJobsBroker, message: Message) -> dict[str, Any]:
    """The message as stored, with the defaults its actor and queue give it; refused options
    raise ``EnqueueRefused`` naming them."""
    refuse_options(message)
    options = message.options
    actor_options = broker.actors[message.actor_name].options \
        if message.actor_name in broker.actors else {}
    policy = policy_for(message.queue_name)
    options.setdefault("priority", actor_options.get("job_priority", policy.priority))
    options.setdefault("max_attempts", max_attempts_for(actor_options, policy.max_attempts))
    if options.get("unique_key") is not None:
        options.setdefault("unique_window", actor_options.get("unique_window",
                                                              policy.unique_window))
    else:
        options.pop("unique_key", None)
    if message.queue_name in broker.queue_limits:
        options["limit_key"] = key_for(message, actor_options)
    else:
        options.pop("limit_key", None)  # nothing claims by key on this queue
    return message.asdict()


def _results(messages: list[Message], rows: list[Inserted]) -> list[EnqueueResult]:
    results = []
    for message, row in zip(messages, rows, strict=True):
        if row.existing is None:
            results.append(EnqueueResult(message.message_id, duplicate=False))
        else:
            results.append(EnqueueResult(str(row.existing), duplicate=True))
    return results


def _refused(exc: psycopg.Error) -> EnqueueRefused:
    detail = exc.diag.message_primary or str(exc)
    return EnqueueRefused(detail)


#: SQLSTATEs of the database's refusals: bad message, no tenant / not allowed.
REFUSALS = ("22023", "42501")


def _tenant_of(target: Target) -> Any:
    """The tenant a session says it is in, for log lines only (the database decides)."""
    ctx = current_job()
    if isinstance(target, Session):
        return target.info.get(TENANT_KEY)
    return ctx.tenant_id if ctx is not None else None


def insert(
    conn: psycopg.Connection[Any], broker: PostgresJobsBroker, messages: list[Message],
    delay: float | None, tenants: Sequence[uuid.UUID | str | None] | None = None,
    *, fan_out: bool = False, tenant: Any = None,
) -> list[EnqueueResult]:
    """Insert prepared ``messages`` on ``conn`` (one statement): for the transaction's
    tenant, or for ``tenants`` (the scheduler's system path, or a system job's fan-out)."""
    bodies = [prepare(broker, m) for m in messages]
    delays = [delay] * len(bodies)
    try:
        if tenants is None:
            rows = store.insert(conn, bodies, delays)
        elif fan_out:
            rows = store.fan_out(conn, bodies, delays, [t for t in tenants if t is not None])
        else:
            rows = store.insert_for_tenants(conn, bodies, delays, tenants)
    except psycopg.Error as exc:
        if exc.sqlstate in REFUSALS:
            raise _refused(exc) from exc
        raise
    results = _results(messages, rows)
    extra: dict[str, Any] = {"delay": f"{delay:.3f}"} if delay else {}
    for n, (message, result) in enumerate(zip(messages, results, strict=True)):
        if not result.duplicate:
            record("enqueued", message_id=message.message_id, actor=message.actor_name,
                   queue=message.queue_name, tenant=tenants[n] if tenants else tenant,
                   priority=message.options.get("priority", 0), **extra)
    return results


def _options(priority: int | None, unique_key: str | None, limit_key: str | None
             ) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if priority is not None:
        options["priority"] = priority
    if unique_key is not None:
        options["unique_key"] = unique_key
    if limit_key is not None:
        options["limit_key"] = limit_key
    return options


def enqueue(
    target: Target,
    actor: dramatiq.Actor,
    *args: Any,
    delay: float | None = None,
    eta: datetime | None = None,
    priority: int | None = None,
    unique_key: str | None = None,
    limit_key: str | None = None,
    **kwargs: Any,
) -> EnqueueResult:
    """Enqueue ``actor(*args, **kwargs)`` in ``target``'s transaction, for its tenant.

    ``delay`` is in seconds; ``eta`` an aware datetime. With ``unique_key``, a job already
    holding the key (queued, delayed, running, or finished within its window) is returned
    instead and nothing is enqueued. ``limit_key`` is the key the queue's rate and
    concurrency limits count this job under, within the tenant (default: the tenant).
    """
    broker = _broker(actor)
    message = actor.message_with_options(args=args, kwargs=kwargs,
                                         **_options(priority, unique_key, limit_key))
    return insert(raw_connection(target), broker, [message], _delay_seconds(delay, eta),
                  tenant=_tenant_of(target))[0]


def enqueue_many(
    target: Target,
    actor: dramatiq.Actor,
    items: Iterable[tuple[Sequence[Any], dict[str, Any]]],
    *,
    delay: float | None = None,
    priority: int | None = None,
    limit_key: str | None = None,
) -> list[EnqueueResult]:
    """Enqueue one job per ``(args, kwargs)`` item in one statement."""
    broker = _broker(actor)
    options = _options(priority, None, limit_key)
    messages = [actor.message_with_options(args=tuple(args), kwargs=kwargs, **options)
                for args, kwargs in items]
    return insert(raw_connection(target), broker, messages, _delay_seconds(delay, None),
                  tenant=_tenant_of(target))


def fan_out(
    actor: dramatiq.Actor, tenants: Iterable[uuid.UUID | str], *args: Any,
    delay: float | None = None, unique_key: str | None = None, **kwargs: Any,
) -> list[EnqueueResult]:
    """From a system (``tenant_free``) job: enqueue ``actor(*args, **kwargs)`` once per tenant.

    The one way a system job reaches tenants. It joins the system job's transaction; the
    database checks that the caller really is a running system job and that every tenant
    exists and is active. ``unique_key`` applies within each tenant.
    """
    ctx = current_job()
    if ctx is None or ctx.tenant_id is not None:
        raise EnqueueRefused("fan_out() is only for system (tenant_free) jobs; a tenant's "
                             "job enqueues with enqueue(current_session(), ...)")
    broker = _broker(actor)
    targets = list(tenants)
    messages = [actor.message_with_options(args=args, kwargs=kwargs,
                                           **_options(None, unique_key, None))
                for _ in targets]
    return insert(raw_connection(ctx.session), broker, messages,
                  _delay_seconds(delay, None), targets, fan_out=True)


def enqueue_for_tenants(
    conn: psycopg.Connection[Any], actor: dramatiq.Actor,
    jobs: Sequence[tuple[uuid.UUID | str | None, tuple[Any, ...], dict[str, Any]]],
    *, unique_keys: Sequence[str | None] | None = None,
) -> list[EnqueueResult]:
    """The system path (the scheduler, as ``app_worker``): each job names its tenant.

    ``jobs`` are ``(tenant or None, args, kwargs)``. Not for application or actor code:
    their connections cannot call it.
    """
    broker = _broker(actor)
    keys = list(unique_keys) if unique_keys is not None else [None] * len(jobs)
    messages = [actor.message_with_options(args=args, kwargs=kwargs,
                                           **_options(None, key, None))
                for (_, args, kwargs), key in zip(jobs, keys, strict=True)]
    return insert(conn, broker, messages, None, [tenant for tenant, _, _ in jobs])


def send(broker: PostgresJobsBroker, message: Message, delay_ms: int | None) -> None:
    """``actor.send()``: the running job's transaction, else the caller's tenant session,
    else (system actors only) a transaction of its own through the broker's pool."""
    refuse_options(message)
    delay = delay_ms / 1000 if delay_ms else None
    ctx = current_job()
    if ctx is not None:
        insert(raw_connection(ctx.session), broker, [message], delay, tenant=ctx.tenant_id)
        return
    session = open_tenant_session()
    if session is not None:
        insert(raw_connection(session), broker, [message], delay, tenant=_tenant_of(session))
        return
    actor = broker.actors.get(message.actor_name)
    if actor is not None and not actor.options.get("tenant_free", False):
        raise EnqueueRefused(
            f"actor {message.actor_name!r} needs a tenant: send it inside a "
            "tenant_session(...) or from a job of that tenant, or enqueue(session, ...)")
    with broker.jobs_pool.connection() as conn:
        insert(conn, broker, [message], delay, [None])
