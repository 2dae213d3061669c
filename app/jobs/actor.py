"""The ``job`` decorator: a dramatiq actor with an explicit name, queue, tenant mode and policy.

Declaring a job configures the PostgreSQL broker first if nothing did (``configure()`` is
idempotent), so a module of actors needs no import-order ritual: ``from app.jobs import
job`` is enough.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq


def job(
    *,
    actor_name: str,
    queue_name: str,
    tenant_free: bool = False,
    priority: int | None = None,
    **options: Any,
) -> Callable[[Callable[..., Any]], dramatiq.Actor]:
    """Declare an actor. ``priority``: higher is claimed first within its queue (default: the
    queue's policy, else 0).

    Other options (``max_attempts``, ``min_backoff``, ``time_limit``, limits...) are checked
    when the actor is declared; an unknown one fails at import time.
    """
    from app.jobs.setup import configure

    broker = configure()

    if priority is not None:
        options["job_priority"] = priority

    def decorate(fn: Callable[..., Any]) -> dramatiq.Actor:
        return dramatiq.actor(
            fn, actor_name=actor_name, queue_name=queue_name, tenant_free=tenant_free,
            broker=broker, **options,
        )

    return decorate
