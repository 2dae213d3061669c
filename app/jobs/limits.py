"""Declaring limits: actor options and queue policies, merged and checked at start-up.

Limits belong to a queue (its claims enforce them), so every actor of a queue shares them.
They are declared once, either in the queue's policy (``app/jobs/policies.py``) or in the
options of one of its actors::

    @job(actor_name="ai.respond", queue_name="ai",
         rate_limit=(10, 1.0),      # at most 10 starts per second per key
         concurrency=5,             # at most 5 running per key, across all workers
         limit_key="tenant")        # the key: the job's tenant (the default)

``queue_rate_limit`` and ``queue_concurrency`` cap the whole queue; ``fair=True`` serves the
keys round-robin without capping them. Two declarations that disagree, or a malformed
value, stop the process at import time; unknown option names are refused by dramatiq.

The key is the job's tenant unless the actor's ``limit_key`` is a function of the job's
arguments (e.g. ``lambda order: order["channel_id"]``) or the caller passes
``enqueue(..., limit_key="channel-123")``; either way the key is scoped to the job's tenant
by the database, so no tenant can spend another tenant's rate or concurrency budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from dramatiq import Message
from dramatiq.middleware import MiddlewareError

from app.broker.limits import Limits

#: Actor option -> field of ``Limits``.
LIMIT_OPTIONS = {
    "rate_limit": "rate",
    "concurrency": "concurrency",
    "queue_rate_limit": "queue_rate",
    "queue_concurrency": "queue_concurrency",
    "fair": "fair",
}
ACTOR_OPTIONS = {*LIMIT_OPTIONS, "limit_key"}
TENANT_KEY = "tenant"


class LimitsInvalid(MiddlewareError, ValueError):
    """A limit is malformed or declared twice with different values (raised at import)."""


def _rate(value: Any) -> Any:
    """Accept ``[10, 1.0]`` as well as ``(10, 1.0)`` (e.g. from JSON settings)."""
    return tuple(value) if isinstance(value, list) else value


def from_options(actor_name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Limits`` fields an actor's options declare, checked."""
    declared = {
        field: _rate(options[option]) if "rate" in field else options[option]
        for option, field in LIMIT_OPTIONS.items() if option in options
    }
    try:
        Limits(**declared)
    except ValueError as exc:
        raise LimitsInvalid(f"actor {actor_name!r}: {exc}") from None
    key = options.get("limit_key", TENANT_KEY)
    if key != TENANT_KEY and not callable(key):
        raise LimitsInvalid(
            f"actor {actor_name!r}: limit_key must be {TENANT_KEY!r} or a function of the "
            f"job's arguments, got {key!r}"
        )
    return declared


def merge(queue: str, current: Limits, declared: dict[str, Any], source: str) -> Limits:
    """``current`` with ``declared`` added; a field set to another value already is an error."""
    for field in fields(Limits):
        if field.name not in declared:
            continue
        mine, theirs = declared[field.name], getattr(current, field.name)
        if theirs != field.default and theirs != mine:
            raise LimitsInvalid(
                f"queue {queue!r}: {source} declares {field.name}={mine!r} but the queue "
                f"already has {field.name}={theirs!r}; limits belong to the queue, so "
                "declare them once (or put these jobs on another queue)"
            )
    return replace(current, **declared)


def key_for(message: Message, actor_options: Mapping[str, Any]) -> str | None:
    """The job's limit key within its tenant: the caller's, else the actor's function of the
    arguments, else None (the tenant's own default key).

    Whatever it is, the database scopes it to the job's tenant (``<tenant>/<key>``), so a
    caller naming another tenant's key only ever names a key of its own.
    """
    given = message.options.get("limit_key")
    if given is None:
        key = actor_options.get("limit_key", TENANT_KEY)
        if not callable(key):
            return None
        given = key(*message.args, **message.kwargs)
        if given is None:
            return None
    if not isinstance(given, str | int) or isinstance(given, bool) or str(given) == "":
        raise LimitsInvalid(
            f"actor {message.actor_name!r}: the limit key must be a non-empty string, "
            f"got {given!r}"
        )
    return str(given)
